package event

import (
	"errors"
	"fmt"
)

// DeliveryKind says what a Delivery carries.
type DeliveryKind uint8

// Delivery kinds.
const (
	DeliverRecord DeliveryKind = iota // Data is one encoded record
	DeliverEvent                      // Data is one event payload (Decode it)
	DeliverEnd                        // the channel ended its partition; Data is nil
	// DeliverTimedRecord: Data is a zigzag varint timestamp (ms since the epoch) followed by
	// one encoded record. Records of jobs without event time come as DeliverRecord, as small
	// as they were before timestamps existed.
	DeliverTimedRecord
)

func (k DeliveryKind) String() string {
	switch k {
	case DeliverRecord:
		return "record"
	case DeliverEvent:
		return "event"
	case DeliverEnd:
		return "end of partition"
	case DeliverTimedRecord:
		return "timed record"
	}
	return fmt.Sprintf("delivery kind %d", uint8(k))
}

// Delivery is one element of one channel of an input gate. Data is a record
// or an event payload and is valid until the next call that returned it.
//
// Channel is an int32 so that a Delivery is four words: the compiler keeps
// a struct of that size in registers when it is returned, and copies a
// larger one through memory, which measured 6 ns more per record (three
// times the cost of slicing the record out of its buffer). Gates have fewer
// than 1<<20 channels.
type Delivery struct {
	Channel int32 // index of the channel in the gate's layout
	Kind    DeliveryKind
	Data    []byte
}

// ErrWoken is returned by an input gate's Next when its wake channel became
// ready before any element: the task has mail to process.
var ErrWoken = errors.New("input: woken")
