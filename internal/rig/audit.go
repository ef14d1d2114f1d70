package rig

// SetAuditPolicy changes the audit policy the API server gets the next time it starts (Up);
// "" turns auditing off. Auditing every write is too costly for a whole benchmark, so suites
// turn it on only around the runs they audit.
func (c *Cluster) SetAuditPolicy(path string) { c.cfg.AuditPolicy = path }
