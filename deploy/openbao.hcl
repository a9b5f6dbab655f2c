# Integrated (raft) storage: one node is enough, and it is what `manage.py dr_backup` snapshots
# (sys/storage/raft/snapshot), Transit keys included; see docs/runbook-disaster-recovery.md.
storage "raft" {
  path    = "/openbao/data"
  node_id = "openbao-1"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true  # terminate TLS in front of it, or configure tls_cert_file/tls_key_file
}

api_addr     = "http://vault:8200"
cluster_addr = "http://vault:8201"
ui           = false
disable_mlock = true  # raft storage: mlock would pin its memory-mapped database
