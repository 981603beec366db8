package jobmanager

import "time"

// The JobManager owns every goroutine it starts: each is counted in jm.bg
// and ends when jm.ctx is done (or sooner), and Run waits for jm.bg before
// it returns, so no scheduling, failover, restart or cancellation work
// outlives the JobManager or touches its state after shutdown.

// spawn runs f in a goroutine the JobManager owns and reports whether it
// did. Once shutdown has begun waiting it runs nothing: Add must not race
// with Wait, and work started then would find the control plane gone
// anyway.
func (jm *JobManager) spawn(f func()) bool {
	jm.bgMu.Lock()
	defer jm.bgMu.Unlock()
	if jm.bgClosed {
		return false
	}
	jm.bg.Add(1)
	go func() {
		defer jm.bg.Done()
		f()
	}()
	return true
}

// after runs f in an owned goroutine once d has passed, unless the
// JobManager stops first.
func (jm *JobManager) after(d time.Duration, f func()) {
	_ = jm.spawn(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			f()
		case <-jm.ctx.Done():
		}
	})
}

// waitBackground stops new background work and waits for the running
// work, which ends with jm.ctx: call it after cancelling jm.ctx.
func (jm *JobManager) waitBackground() {
	jm.bgMu.Lock()
	jm.bgClosed = true
	jm.bgMu.Unlock()
	jm.bg.Wait()
}
