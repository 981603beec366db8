// Package nexmark generates the events of the Nexmark benchmark: people who sell items in
// auctions and bid on them. Event n of a seed is a pure function of (seed, n), so any number
// of generators, each producing whichever event numbers it is given, together produce the
// same stream as one, and a restored generator resumes at an event number.
//
// The distributions follow the benchmark's generator: of every 50 events 1 is a new person,
// 3 are new auctions and 46 are bids; bids go mostly to a few hot auctions and come mostly
// from a few hot bidders, auctions mostly from a few hot sellers; other ids are drawn among
// recent auctions and active people (with a small lead into ids not yet created, as the
// benchmark does); event time advances by a fixed delay per event from a base time.
package nexmark

import (
	"math"
	"math/bits"
	"slices"
	"strconv"
)

// EventType tells which of an event's parts is set.
type EventType int8

// The event types, as the event_type column of Nexmark's queries numbers them.
const (
	PersonEvent  EventType = 0
	AuctionEvent EventType = 1
	BidEvent     EventType = 2
)

// The proportions of the event types: of every TotalProportion events, the first
// PersonProportion are people, the next AuctionProportion auctions, the rest bids.
const (
	PersonProportion  = 1
	AuctionProportion = 3
	BidProportion     = 46
	TotalProportion   = PersonProportion + AuctionProportion + BidProportion
)

// Ids start above zero, as in the benchmark, so that an id is never mistaken for a count.
const (
	FirstPersonID   = 1000
	FirstAuctionID  = 1000
	FirstCategoryID = 10
	NumCategories   = 5
)

const (
	// activePeople bounds the people a non-hot bid or auction draws from: the latest ones.
	activePeople = 1000
	// inFlightAuctions bounds the auctions a non-hot bid draws from: the latest ones.
	inFlightAuctions = 100
	// A draw may name an id up to this many ahead of the latest created (the benchmark's
	// lead), so some bids refer to auctions and people not seen yet.
	personIDLead  = 10
	auctionIDLead = 10
	// Hot ids are the latest id rounded down to a multiple of hotStride: one hot auction,
	// seller and bidder for every hotStride created.
	hotStride = 100
	// The odds of hot: (ratio-1)/ratio of bids go to a hot auction (1/2), of bids come from
	// a hot bidder (3/4), of auctions come from a hot seller (3/4).
	hotAuctionRatio = 2
	hotBidderRatio  = 4
	hotSellerRatio  = 4
	// Average sizes in bytes the extra field pads each event type towards.
	avgPersonBytes  = 200
	avgAuctionBytes = 500
	avgBidBytes     = 100
	// Half of the bids come through a few hot channels, the rest through one of many.
	hotChannelRatio = 2
	numChannels     = 10_000
)

// DefaultEventRate is the event-time rate when none is given: events per second of event
// time, the benchmark's default first-event rate.
const DefaultEventRate = 10_000

// DefaultBaseTime is the event time of event 0 when none is given, in ms since the epoch
// (2025-01-01T00:00:00Z): fixed, so that a seed always gives the same events.
const DefaultBaseTime = 1_735_689_600_000

// Config says which stream a generator produces.
type Config struct {
	Seed      int64
	BaseTime  int64 // event time of event 0, ms since the epoch
	EventRate int64 // events per second of event time, > 0
}

// Person is a new person event. Text fields alias the Event's buffer.
type Person struct {
	ID           int64
	Name         []byte
	EmailAddress []byte
	CreditCard   []byte
	City         []byte
	State        []byte
	DateTime     int64
	Extra        []byte
}

// Auction is a new auction event.
type Auction struct {
	ID          int64
	ItemName    []byte
	Description []byte
	InitialBid  int64
	Reserve     int64
	DateTime    int64
	Expires     int64
	Seller      int64
	Category    int64
	Extra       []byte
}

// Bid is a bid event.
type Bid struct {
	Auction  int64
	Bidder   int64
	Price    int64
	Channel  []byte
	URL      []byte
	DateTime int64
	Extra    []byte
}

// Event is one generated event; only the part of its Type is meaningful. An Event is reused
// from one call of Generator.Event to the next: its text fields alias its buffer.
type Event struct {
	Number  int64
	Type    EventType
	Person  Person
	Auction Auction
	Bid     Bid
	buf     []byte
}

// Generator produces events of one Config.
type Generator struct {
	cfg Config
}

// New returns a generator of cfg's stream; a rate <= 0 is DefaultEventRate.
func New(cfg Config) *Generator {
	if cfg.EventRate <= 0 {
		cfg.EventRate = DefaultEventRate
	}
	return &Generator{cfg: cfg}
}

// Config returns the generator's configuration, defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Timestamp is the event time of event n, ms since the epoch.
func (g *Generator) Timestamp(n int64) int64 {
	hi, lo := bits.Mul64(uint64(n), 1000)
	if hi != 0 {
		return math.MaxInt64
	}
	return g.cfg.BaseTime + int64(lo/uint64(g.cfg.EventRate))
}

// TypeOf is the type of event n.
func TypeOf(n int64) EventType {
	switch rem := n % TotalProportion; {
	case rem < PersonProportion:
		return PersonEvent
	case rem < PersonProportion+AuctionProportion:
		return AuctionEvent
	}
	return BidEvent
}

// lastPerson is the 0-based id of the latest person created at or before event n.
func lastPerson(n int64) int64 {
	epoch, off := n/TotalProportion, n%TotalProportion
	if off >= PersonProportion {
		off = PersonProportion - 1
	}
	return epoch*PersonProportion + off
}

// lastAuction is the 0-based id of the latest auction created at or before event n (-1 ->
// 0 before the first, as the benchmark clamps).
func lastAuction(n int64) int64 {
	epoch, off := n/TotalProportion, n%TotalProportion
	switch {
	case off < PersonProportion:
		epoch--
		off = AuctionProportion - 1
	case off >= PersonProportion+AuctionProportion:
		off = AuctionProportion - 1
	default:
		off -= PersonProportion
	}
	return max(epoch*AuctionProportion+off, 0)
}

// Event fills ev with event n.
func (g *Generator) Event(n int64, ev *Event) {
	r := newRand(g.cfg.Seed, n)
	ts := g.Timestamp(n)
	if cap(ev.buf) < 2048 {
		ev.buf = make([]byte, 0, 2048)
	}
	ev.buf = ev.buf[:0]
	ev.Number, ev.Type = n, TypeOf(n)
	switch ev.Type {
	case PersonEvent:
		g.person(n, ts, &r, ev)
	case AuctionEvent:
		g.auction(n, ts, &r, ev)
	default:
		g.bid(n, ts, &r, ev)
	}
}

// text appends what f writes to the event's buffer and returns it as a slice of it.
func (ev *Event) text(f func(dst []byte) []byte) []byte {
	start := len(ev.buf)
	ev.buf = f(ev.buf)
	return ev.buf[start:len(ev.buf):len(ev.buf)]
}

func (g *Generator) person(n, ts int64, r *rng, ev *Event) {
	p := &ev.Person
	p.ID = lastPerson(n) + FirstPersonID
	p.DateTime = ts
	start := len(ev.buf)
	ev.buf = append(ev.buf, firstNames[r.intn(len(firstNames))]...)
	ev.buf = append(ev.buf, ' ')
	ev.buf = append(ev.buf, lastNames[r.intn(len(lastNames))]...)
	p.Name = ev.buf[start:len(ev.buf):len(ev.buf)]
	p.EmailAddress = ev.text(func(b []byte) []byte {
		b = r.appendWord(b, 3+r.intn(8))
		b = append(b, '@')
		b = r.appendWord(b, 3+r.intn(6))
		return append(b, ".com"...)
	})
	p.CreditCard = ev.text(func(b []byte) []byte {
		for i := range 4 {
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendPadded(b, int64(r.intn(10_000)), 4)
		}
		return b
	})
	c := r.intn(len(cities))
	p.City = ev.text(func(b []byte) []byte { return append(b, cities[c].city...) })
	p.State = ev.text(func(b []byte) []byte { return append(b, cities[c].state...) })
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + 8
	p.Extra = ev.text(func(b []byte) []byte { return r.appendExtra(b, size, avgPersonBytes) })
}

func (g *Generator) auction(n, ts int64, r *rng, ev *Event) {
	a := &ev.Auction
	a.ID = lastAuction(n) + FirstAuctionID
	a.DateTime = ts
	if r.intn(hotSellerRatio) > 0 {
		a.Seller = lastPerson(n) / hotStride * hotStride
	} else {
		a.Seller = nextPerson(n, r)
	}
	a.Seller += FirstPersonID
	a.Category = FirstCategoryID + int64(r.intn(NumCategories))
	a.InitialBid = r.price()
	a.Reserve = a.InitialBid + r.price()
	a.Expires = ts + g.auctionLength(n, ts, r)
	a.ItemName = ev.text(func(b []byte) []byte { return r.appendWord(b, 3+r.intn(18)) })
	a.Description = ev.text(func(b []byte) []byte { return r.appendWord(b, 3+r.intn(98)) })
	size := 8 + len(a.ItemName) + len(a.Description) + 8*6
	a.Extra = ev.text(func(b []byte) []byte { return r.appendExtra(b, size, avgAuctionBytes) })
}

func (g *Generator) bid(n, ts int64, r *rng, ev *Event) {
	b := &ev.Bid
	b.DateTime = ts
	if r.intn(hotAuctionRatio) > 0 {
		b.Auction = lastAuction(n) / hotStride * hotStride
	} else {
		b.Auction = nextAuction(n, r)
	}
	b.Auction += FirstAuctionID
	if r.intn(hotBidderRatio) > 0 {
		// +1: the hot bidder is another person than the hot seller.
		b.Bidder = lastPerson(n)/hotStride*hotStride + 1
	} else {
		b.Bidder = nextPerson(n, r)
	}
	b.Bidder += FirstPersonID
	b.Price = r.price()
	if r.intn(hotChannelRatio) > 0 {
		h := r.intn(len(hotChannels))
		b.Channel = ev.text(func(d []byte) []byte { return append(d, hotChannels[h].name...) })
		b.URL = ev.text(func(d []byte) []byte { return append(d, hotChannels[h].url...) })
	} else {
		ch := int64(r.intn(numChannels))
		b.Channel = ev.text(func(d []byte) []byte { return strconv.AppendInt(append(d, "channel-"...), ch, 10) })
		b.URL = ev.text(func(d []byte) []byte {
			d = append(d, "https://www.nexmark.com/"...)
			d = r.appendLetters(d, 5)
			d = append(d, "/item.htm?query=1&channel_id="...)
			return strconv.AppendInt(d, ch, 10)
		})
	}
	// As in the benchmark, the padding counts the four numbers only: a bid averages
	// avgBidBytes of extra text beside its channel and URL.
	size := 8 * 4
	b.Extra = ev.text(func(d []byte) []byte { return r.appendExtra(d, size, avgBidBytes) })
}

// nextPerson draws a 0-based person id among the active people at event n, or a little
// ahead of them.
func nextPerson(n int64, r *rng) int64 {
	people := lastPerson(n) + 1
	active := min(people, activePeople)
	return people - active + r.int63n(active+personIDLead)
}

// nextAuction draws a 0-based auction id among the auctions in flight at event n, or a
// little ahead of them.
func nextAuction(n int64, r *rng) int64 {
	last := lastAuction(n)
	first := max(last-inFlightAuctions, 0)
	return first + r.int63n(last-first+1+auctionIDLead)
}

// auctionLength is how long an auction created at event n runs, in ms: up to twice the
// event time it takes for inFlightAuctions more auctions to be created, so about that many
// are open at any time.
func (g *Generator) auctionLength(n, ts int64, r *rng) int64 {
	eventsForAuctions := int64(inFlightAuctions * TotalProportion / AuctionProportion)
	horizon := g.Timestamp(n+eventsForAuctions) - ts
	return 1 + r.int63n(max(horizon*2, 1))
}

// appendPadded appends x in decimal with leading zeros to width digits.
func appendPadded(b []byte, x int64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], x, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

var firstNames = []string{"Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kofi"}

var lastNames = []string{"Almeida", "Berg", "Castro", "Dubois", "Eriksen", "Fontaine", "Gruber", "Haas", "Ivanova"}

var cities = []struct{ city, state string }{
	{"Tucson", "AZ"}, {"Sacramento", "CA"}, {"Fresno", "CA"}, {"Nampa", "ID"}, {"Salem", "OR"},
	{"Eugene", "OR"}, {"Spokane", "WA"}, {"Tacoma", "WA"}, {"Olympia", "WA"}, {"Laramie", "WY"},
}

var hotChannels = []struct{ name, url string }{
	{"Search", "https://www.nexmark.com/search/item.htm?query=1"},
	{"Social", "https://www.nexmark.com/social/item.htm?query=1"},
	{"Mail", "https://www.nexmark.com/mail/item.htm?query=1"},
	{"Partner", "https://www.nexmark.com/partner/item.htm?query=1"},
}

// rng is the random stream of one event: splitmix64 seeded from (seed, event number), so
// each event is drawn independently of every other and of who generates it.
type rng struct{ s uint64 }

func newRand(seed, n int64) rng {
	r := rng{s: uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(n)*0xd1b54a32d192ed03}
	r.next() // the first output of close states is well mixed already; one step decorrelates more
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, k), k > 0 (Lemire's multiply-shift; the bias is below 2^-32
// for the small k used here).
func (r *rng) intn(k int) int {
	hi, _ := bits.Mul64(r.next(), uint64(k))
	return int(hi)
}

// int63n returns a number in [0, k), k > 0.
func (r *rng) int63n(k int64) int64 {
	hi, _ := bits.Mul64(r.next(), uint64(k))
	return int64(hi)
}

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// price is a price in cents, log-uniform between $1 and $1,000,000 as in the benchmark.
func (r *rng) price() int64 { return int64(math.Round(math.Exp(r.float()*6*math.Ln10) * 100)) }

// wordChars maps 6 random bits to a character: lower-case letters, some spaces.
const wordChars = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz eaiotnrs   "

// appendWord appends n random characters, ten from each draw.
func (r *rng) appendWord(b []byte, n int) []byte {
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	dst := b[start:]
	for i := 0; i < len(dst); i += 10 {
		x := r.next()
		for k := i; k < min(i+10, len(dst)); k++ {
			dst[k] = wordChars[x&63]
			x >>= 6
		}
	}
	return b
}

// appendLetters appends n random lower-case letters (for URLs: no spaces).
func (r *rng) appendLetters(b []byte, n int) []byte {
	for n > 0 {
		x := r.next()
		for k := 0; k < 10 && n > 0; k++ {
			b = append(b, 'a'+byte((x&63)%26))
			x >>= 6
			n--
		}
	}
	return b
}

// appendExtra pads an event of size bytes towards avg bytes on average, within +-20 %.
func (r *rng) appendExtra(b []byte, size, avg int) []byte {
	if size >= avg {
		return b
	}
	want := avg - size
	delta := int(math.Round(float64(want) * 0.2))
	n := want - delta
	if delta > 0 {
		n += r.intn(2 * delta)
	}
	return r.appendWord(b, n)
}
