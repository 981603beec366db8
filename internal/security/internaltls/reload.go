package internaltls

// ReloadTLS re-reads the internal keystore and truststore now (the
// JobManager's POST /admin/reload). In automatic mode the material comes
// from the cluster CA, not from files, and there is nothing to re-read.
func (jm *JobManager) ReloadTLS() error {
	if jm.store == nil {
		return nil
	}
	return jm.store.Reload()
}
