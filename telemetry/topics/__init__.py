"""The live topic viewer: browse, tail, filter and replay the Kafka topics an operator may see.

Every topic name a browser sends is checked against `access.topic_grant` (exact names only), and
every message is masked (`masking`) before it leaves the server.
"""
