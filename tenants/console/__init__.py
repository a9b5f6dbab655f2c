"""The operators' console: server-rendered pages (htmx for partial updates, Channels for live
provisioning). Each page module holds its views; access.py decides who may see and do what."""
