package nexmark

import (
	"bytes"
	"math"
	"testing"
)

func TestEventIsAFunctionOfSeedAndNumber(t *testing.T) {
	g := New(Config{Seed: 42, BaseTime: DefaultBaseTime})
	var a, b Event
	for _, n := range []int64{0, 1, 2, 3, 4, 49, 50, 12345, 1 << 40} {
		g.Event(n, &a)
		g.Event(n+1, &b) // another event in between must not change the next draw of n
		var c Event
		New(Config{Seed: 42, BaseTime: DefaultBaseTime}).Event(n, &c)
		if !sameEvent(&a, &c) {
			t.Errorf("event %d differs between two generators of one seed", n)
		}
	}
	var other Event
	New(Config{Seed: 43}).Event(10, &other)
	g.Event(10, &a)
	if sameEvent(&a, &other) {
		t.Error("seeds 42 and 43 give the same bid 10")
	}
}

func sameEvent(a, b *Event) bool {
	if a.Type != b.Type || a.Number != b.Number {
		return false
	}
	switch a.Type {
	case PersonEvent:
		x, y := a.Person, b.Person
		return x.ID == y.ID && bytes.Equal(x.Name, y.Name) && bytes.Equal(x.EmailAddress, y.EmailAddress) &&
			bytes.Equal(x.CreditCard, y.CreditCard) && bytes.Equal(x.City, y.City) && bytes.Equal(x.State, y.State) &&
			x.DateTime == y.DateTime && bytes.Equal(x.Extra, y.Extra)
	case AuctionEvent:
		x, y := a.Auction, b.Auction
		return x.ID == y.ID && bytes.Equal(x.ItemName, y.ItemName) && bytes.Equal(x.Description, y.Description) &&
			x.InitialBid == y.InitialBid && x.Reserve == y.Reserve && x.DateTime == y.DateTime && x.Expires == y.Expires &&
			x.Seller == y.Seller && x.Category == y.Category && bytes.Equal(x.Extra, y.Extra)
	}
	x, y := a.Bid, b.Bid
	return x.Auction == y.Auction && x.Bidder == y.Bidder && x.Price == y.Price && bytes.Equal(x.Channel, y.Channel) &&
		bytes.Equal(x.URL, y.URL) && x.DateTime == y.DateTime && bytes.Equal(x.Extra, y.Extra)
}

// TestDistributions checks the benchmark's proportions and the shape of the ids over 100k
// events.
func TestDistributions(t *testing.T) {
	const events = 100_000
	g := New(Config{Seed: 7, BaseTime: DefaultBaseTime, EventRate: 10_000})
	var ev Event
	var count [3]int
	var hotAuction, hotBidder, hotSeller, bidBytes int
	var lastPersonID, lastAuctionID int64 = FirstPersonID - 1, FirstAuctionID - 1
	prevTime := int64(math.MinInt64)
	for n := range int64(events) {
		g.Event(n, &ev)
		count[ev.Type]++
		var ts int64
		switch ev.Type {
		case PersonEvent:
			p := ev.Person
			if p.ID != lastPersonID+1 {
				t.Fatalf("event %d: person %d after %d: ids must be consecutive", n, p.ID, lastPersonID)
			}
			lastPersonID, ts = p.ID, p.DateTime
		case AuctionEvent:
			a := ev.Auction
			if a.ID != lastAuctionID+1 {
				t.Fatalf("event %d: auction %d after %d", n, a.ID, lastAuctionID)
			}
			lastAuctionID, ts = a.ID, a.DateTime
			if a.Seller > lastPersonID+personIDLead || a.Seller < FirstPersonID {
				t.Fatalf("event %d: seller %d, latest person %d", n, a.Seller, lastPersonID)
			}
			if (a.Seller-FirstPersonID)%hotStride == 0 {
				hotSeller++
			}
			if a.Expires <= a.DateTime || a.Reserve < a.InitialBid || a.Category < FirstCategoryID || a.Category >= FirstCategoryID+NumCategories {
				t.Fatalf("event %d: auction %+v", n, a)
			}
		case BidEvent:
			b := ev.Bid
			ts = b.DateTime
			if b.Auction > lastAuctionID+auctionIDLead || b.Auction < max(FirstAuctionID, lastAuctionID-inFlightAuctions) {
				t.Fatalf("event %d: bid on auction %d, latest auction %d", n, b.Auction, lastAuctionID)
			}
			if b.Bidder > lastPersonID+personIDLead+1 || b.Bidder < FirstPersonID {
				t.Fatalf("event %d: bidder %d, latest person %d", n, b.Bidder, lastPersonID)
			}
			if (b.Auction-FirstAuctionID)%hotStride == 0 {
				hotAuction++
			}
			if (b.Bidder-FirstPersonID)%hotStride == 1 {
				hotBidder++
			}
			if b.Price < 100 || b.Price > 100_000_000 {
				t.Fatalf("event %d: price %d cents", n, b.Price)
			}
			bidBytes += len(b.Extra)
		}
		if ts < prevTime {
			t.Fatalf("event %d: time %d before %d", n, ts, prevTime)
		}
		prevTime = ts
	}
	if count[PersonEvent] != events/50 || count[AuctionEvent] != events*3/50 || count[BidEvent] != events*46/50 {
		t.Errorf("people, auctions, bids = %v, want 2 %%, 6 %%, 92 %% of %d", count, events)
	}
	share := func(k, of int) float64 { return float64(k) / float64(of) }
	// Hot draws plus the non-hot draws that land on a hot id by chance (about 1 in 100).
	if s := share(hotAuction, count[BidEvent]); s < 0.48 || s > 0.56 {
		t.Errorf("%.3f of bids on a hot auction, want about 1/2", s)
	}
	if s := share(hotBidder, count[BidEvent]); s < 0.72 || s > 0.80 {
		t.Errorf("%.3f of bids from a hot bidder, want about 3/4", s)
	}
	if s := share(hotSeller, count[AuctionEvent]); s < 0.70 || s > 0.80 {
		t.Errorf("%.3f of auctions from a hot seller, want about 3/4", s)
	}
	if avg := share(bidBytes, count[BidEvent]); avg < 60 || avg > 76 {
		t.Errorf("bids carry %.1f bytes of extra on average, want about %d", avg, avgBidBytes-32)
	}
	if want := DefaultBaseTime + int64(events-1)*1000/10_000; prevTime != want {
		t.Errorf("event %d at %d, want %d (10,000 events a second of event time)", events-1, prevTime, want)
	}
}

func BenchmarkEvent(b *testing.B) {
	g := New(Config{Seed: 1})
	var ev Event
	b.ReportAllocs()
	for i := range b.N {
		g.Event(int64(i), &ev)
	}
}
