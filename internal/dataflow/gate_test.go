package dataflow

// noBlocking gives a test gate that never sees a barrier the InputGate's Block and Unblock.
type noBlocking struct{}

func (noBlocking) Block(int)   {}
func (noBlocking) Unblock(int) {}
