"""What the PMS must hear: status reports (fenced, retried, recorded), failover and recovery."""
