storage "file" {
  path = "/openbao/file"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true  # terminate TLS in front of it, or configure tls_cert_file/tls_key_file
}

ui = false
disable_mlock = false
