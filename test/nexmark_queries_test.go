package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The Nexmark query specs under examples/nexmark are checked here against references computed
// in plain Go over the JSON lines of `sluice nexmark generate`, independently of sluice's
// operators: the same events give the same results at any parallelism and across a
// TaskManager's failure.

// nexmarkQueryEvents is the size of the generated file the query results are checked on;
// NEXMARK_QUERY_EVENTS overrides it (e.g. for a quicker local run).
func nexmarkQueryEvents(t *testing.T) int {
	n := 1_000_000
	if s := os.Getenv("NEXMARK_QUERY_EVENTS"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			t.Fatalf("NEXMARK_QUERY_EVENTS=%q: want a positive number of events", s)
		}
	}
	return n
}

// nexEvent is one line of `sluice nexmark generate`, with the fields the references use.
type nexEvent struct {
	EventType int `json:"event_type"`
	Person    *struct {
		ID       int64  `json:"id"`
		Name     string `json:"name"`
		City     string `json:"city"`
		State    string `json:"state"`
		DateTime int64  `json:"dateTime"`
	} `json:"person"`
	Auction *struct {
		ID       int64 `json:"id"`
		Seller   int64 `json:"seller"`
		Category int64 `json:"category"`
		DateTime int64 `json:"dateTime"`
		Expires  int64 `json:"expires"`
	} `json:"auction"`
	Bid *struct {
		Auction  int64  `json:"auction"`
		Bidder   int64  `json:"bidder"`
		Price    int64  `json:"price"`
		DateTime int64  `json:"dateTime"`
		Extra    string `json:"extra"`
	} `json:"bid"`
}

func readNexmarkEvents(t *testing.T, file string) []nexEvent {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []nexEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e nexEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// windowStart is the start of the window of size ms holding ts, windows aligned to 0.
func windowStart(ts, size int64) int64 {
	m := ts % size
	if m < 0 {
		m += size
	}
	return ts - m
}

// canonical re-encodes a JSON object with sorted keys, so lines of sluice and of the
// references compare whatever their key order and number formatting.
func canonical(t *testing.T, line string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("output line %q is not a JSON object: %v", line, err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func canonicalAll(t *testing.T, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = canonical(t, l)
	}
	slices.Sort(out)
	return out
}

func jsonLine(t *testing.T, v map[string]any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// refQ5: per sliding window of 10 s every 2 s, the auctions with the most bids, with that
// number.
func refQ5(t *testing.T, evs []nexEvent) []string {
	const size, slide = 10_000, 2_000
	counts := map[int64]map[int64]int64{} // window start -> auction -> bids
	for _, e := range evs {
		if e.EventType != 2 {
			continue
		}
		for start := windowStart(e.Bid.DateTime, slide); start > e.Bid.DateTime-size; start -= slide {
			if counts[start] == nil {
				counts[start] = map[int64]int64{}
			}
			counts[start][e.Bid.Auction]++
		}
	}
	var out []string
	for _, byAuction := range counts {
		var most int64
		for _, n := range byAuction {
			most = max(most, n)
		}
		for a, n := range byAuction {
			if n == most {
				out = append(out, jsonLine(t, map[string]any{"auction": a, "num": n}))
			}
		}
	}
	return out
}

// refQ7: per tumbling window of 10 s, the bids of the highest price.
func refQ7(t *testing.T, evs []nexEvent) []string {
	const size = 10_000
	highest := map[int64]int64{}
	for _, e := range evs {
		if e.EventType == 2 {
			w := windowStart(e.Bid.DateTime, size)
			highest[w] = max(highest[w], e.Bid.Price)
		}
	}
	var out []string
	for _, e := range evs {
		if b := e.Bid; e.EventType == 2 && b.Price == highest[windowStart(b.DateTime, size)] {
			out = append(out, jsonLine(t, map[string]any{"auction": b.Auction, "price": b.Price, "bidder": b.Bidder, "dateTime": b.DateTime, "extra": b.Extra}))
		}
	}
	return out
}

// refQ8: the people who opened an auction in the 10 s tumbling window they registered in.
func refQ8(t *testing.T, evs []nexEvent) []string {
	const size = 10_000
	type sw struct{ seller, start int64 }
	sellers := map[sw]bool{}
	for _, e := range evs {
		if e.EventType == 1 {
			sellers[sw{e.Auction.Seller, windowStart(e.Auction.DateTime, size)}] = true
		}
	}
	var out []string
	for _, e := range evs {
		if p := e.Person; e.EventType == 0 {
			if w := windowStart(p.DateTime, size); sellers[sw{p.ID, w}] {
				out = append(out, jsonLine(t, map[string]any{"id": p.ID, "name": p.Name, "stime": w}))
			}
		}
	}
	return out
}

// refQ3: the auctions of category 10 whose seller lives in OR, ID or CA, with the seller.
func refQ3(t *testing.T, evs []nexEvent) []string {
	type person struct{ name, city, state string }
	people := map[int64]person{}
	for _, e := range evs {
		if p := e.Person; e.EventType == 0 && (p.State == "OR" || p.State == "ID" || p.State == "CA") {
			people[p.ID] = person{p.Name, p.City, p.State}
		}
	}
	var out []string
	for _, e := range evs {
		if a := e.Auction; e.EventType == 1 && a.Category == 10 {
			if p, ok := people[a.Seller]; ok {
				out = append(out, jsonLine(t, map[string]any{"name": p.name, "city": p.city, "state": p.state, "id": a.ID}))
			}
		}
	}
	return out
}

// refQ4: per category, the average of its auctions' winning bids: the highest bid placed
// from the auction's creation to its expiry, both included; auctions without one left out.
func refQ4(t *testing.T, evs []nexEvent) []string {
	type auction struct{ category, from, to int64 }
	auctions := map[int64]auction{}
	for _, e := range evs {
		if a := e.Auction; e.EventType == 1 {
			auctions[a.ID] = auction{a.Category, a.DateTime, a.Expires}
		}
	}
	winning := map[int64]int64{}
	for _, e := range evs {
		if b := e.Bid; e.EventType == 2 {
			if a, ok := auctions[b.Auction]; ok && b.DateTime >= a.from && b.DateTime <= a.to {
				if p, seen := winning[b.Auction]; !seen || b.Price > p {
					winning[b.Auction] = b.Price
				}
			}
		}
	}
	sum, n := map[int64]int64{}, map[int64]int64{}
	for id, p := range winning {
		sum[auctions[id].category] += p
		n[auctions[id].category]++
	}
	var out []string
	for c := range sum {
		out = append(out, jsonLine(t, map[string]any{"id": c, "final": float64(sum[c]) / float64(n[c])}))
	}
	return out
}

// refQ11: per bidder, its sessions of bids less than 10 s apart: the number of bids, the
// first bid's time and the last one's plus 10 s.
func refQ11(t *testing.T, evs []nexEvent) []string {
	const gap = 10_000
	times := map[int64][]int64{}
	for _, e := range evs {
		if e.EventType == 2 {
			times[e.Bid.Bidder] = append(times[e.Bid.Bidder], e.Bid.DateTime)
		}
	}
	var out []string
	for bidder, ts := range times {
		slices.Sort(ts)
		first := 0
		for i := 1; i <= len(ts); i++ {
			if i == len(ts) || ts[i]-ts[i-1] >= gap {
				out = append(out, jsonLine(t, map[string]any{"bidder": bidder, "bid_count": i - first, "starttime": ts[first], "endtime": ts[i-1] + gap}))
				first = i
			}
		}
	}
	return out
}

// TestNexmarkQueriesMatchReference runs q5, q7 and q8 on real JobManager and TaskManager
// processes over a generated file at -p 1 and -p 4, and on the nexmark source generating the
// same events at a limited rate with a TaskManager killed mid-run (checkpoints every 500 ms),
// and compares each output with the plain-Go reference; q3, q4 and q11 are checked on the
// file at -p 4.
func TestNexmarkQueriesMatchReference(t *testing.T) {
	t.Parallel()
	const seed, eventRate, killRate = 11, 10_000, 50_000
	events := nexmarkQueryEvents(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "events.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, stderr, code := runSluice(ctx, t, "nexmark", "generate", "--events", fmt.Sprint(events), "--seed", fmt.Sprint(seed),
		"--first-event-rate", fmt.Sprint(eventRate), "--output", file); code != 0 {
		t.Fatalf("sluice nexmark generate: exit %d\n%s", code, stderr)
	}
	evs := readNexmarkEvents(t, file)
	if len(evs) != events {
		t.Fatalf("generated %d events, want %d", len(evs), events)
	}
	refs := map[string][]string{"q5": refQ5(t, evs), "q7": refQ7(t, evs), "q8": refQ8(t, evs),
		"q3": refQ3(t, evs), "q4": refQ4(t, evs), "q11": refQ11(t, evs)}
	evs = nil

	c, _ := checkpointCluster(t, 2, false)
	killed := 0
	for _, q := range []string{"q5", "q7", "q8", "q3", "q4", "q11"} {
		// q5, q7 and q8 at -p 1, -p 4 and with a kill; the other queries at -p 4 as well.
		full := q == "q5" || q == "q7" || q == "q8"
		want := canonicalAll(t, refs[q])
		if len(want) == 0 {
			t.Fatalf("%s: the reference is empty: the check would be vacuous", q)
		}
		check := func(t *testing.T, out string) {
			t.Helper()
			got := canonicalAll(t, committedLines(t, out))
			if !slices.Equal(got, want) {
				t.Fatalf("%s: %d output lines differ from the reference's %d:\n%s", q, len(got), len(want), lineDiff(got, want))
			}
		}
		for _, p := range []string{"1", "4"} {
			if !full && p == "1" {
				continue
			}
			t.Run(q+"/p"+p, func(t *testing.T) {
				start := time.Now()
				out := filepath.Join(t.TempDir(), "out")
				id := runDetached(t, c, "examples/nexmark/"+q+".yaml", "-p", p, "--param", "input="+file, "--param", "output="+out)
				waitJobState(t, c, id, "FINISHED", 3*time.Minute)
				check(t, out)
				t.Logf("%s at -p %s: %d lines in %v", q, p, len(want), time.Since(start).Round(time.Millisecond))
			})
		}
		if !full {
			continue
		}
		t.Run(q+"/kill", func(t *testing.T) {
			start := time.Now()
			out := filepath.Join(t.TempDir(), "out")
			id := runDetached(t, c, "examples/nexmark/"+q+".yaml", "-p", "4",
				"-D", "execution.checkpointing.interval=500 ms",
				"--param", fmt.Sprintf("events=%d", events), "--param", fmt.Sprintf("seed=%d", seed),
				"--param", fmt.Sprintf("rate=%d", killRate), "--param", fmt.Sprintf("event-rate=%d", eventRate),
				"--param", "output="+out)
			waitCheckpoints(t, c, id, 2)
			if s := c.jobState(id); s != "RUNNING" {
				t.Fatalf("job %s before the kill, want RUNNING: the test would restore nothing", s)
			}
			// The oldest TaskManager still running: each kill case leaves a new one behind.
			c.tms[killed].Kill()
			killed++
			c.addTM()
			waitJobState(t, c, id, "FINISHED", 3*time.Minute)
			if _, _, restored, _ := checkpointCounts(c, id); restored < 1 {
				t.Errorf("the job did not restore a checkpoint after the kill")
			}
			check(t, out)
			t.Logf("%s with a TaskManager killed: %d lines in %v", q, len(want), time.Since(start).Round(time.Millisecond))
		})
	}
}

// lineDiff lists up to 10 lines only in got and only in want (both sorted).
func lineDiff(got, want []string) string {
	count := func(ls []string) map[string]int {
		m := map[string]int{}
		for _, l := range ls {
			m[l]++
		}
		return m
	}
	g, w, gc := count(got), count(want), count(got)
	var b strings.Builder
	n := 0
	for _, l := range got {
		if g[l] > w[l] && n < 10 {
			fmt.Fprintf(&b, "  extra:   %s (x%d, want x%d)\n", l, g[l], w[l])
			g[l] = w[l]
			n++
		}
	}
	for _, l := range want {
		if w[l] > gc[l] && n < 20 {
			fmt.Fprintf(&b, "  missing: %s\n", l)
			w[l] = 0
			n++
		}
	}
	return b.String()
}

// nexmarkQueryColumns are the output columns of each query spec, Nexmark's names.
var nexmarkQueryColumns = map[string][]string{
	"q0":  {"auction", "bidder", "price", "dateTime", "extra"},
	"q1":  {"auction", "bidder", "price", "dateTime", "extra"},
	"q2":  {"auction", "price"},
	"q3":  {"name", "city", "state", "id"},
	"q4":  {"id", "final"},
	"q5":  {"auction", "num"},
	"q7":  {"auction", "price", "bidder", "dateTime", "extra"},
	"q8":  {"id", "name", "stime"},
	"q11": {"bidder", "bid_count", "starttime", "endtime"},
	"q12": {"bidder", "bid_count", "starttime", "endtime"},
}

// TestNexmarkQuerySpecsRun runs every query spec of examples/nexmark on 10000 generated
// events at -p 2: without an output directory (results discarded) it finishes; with one it
// finishes and writes JSON lines with exactly the query's columns.
func TestNexmarkQuerySpecsRun(t *testing.T) {
	c := startCluster(t, 1, 2)
	specs, err := filepath.Glob(filepath.Join(repoRoot(t), "examples", "nexmark", "q*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != len(nexmarkQueryColumns) {
		t.Fatalf("examples/nexmark has %d query specs, want %d (q0-q8 without q6, q11, q12)", len(specs), len(nexmarkQueryColumns))
	}
	for _, spec := range specs {
		q := strings.TrimSuffix(filepath.Base(spec), ".yaml")
		cols, ok := nexmarkQueryColumns[q]
		if !ok {
			t.Fatalf("unexpected query spec %s", spec)
		}
		t.Run(q, func(t *testing.T) {
			rel := "examples/nexmark/" + q + ".yaml"
			id := runDetached(t, c, rel, "-p", "2", "--param", "events=10000")
			waitJobState(t, c, id, "FINISHED", time.Minute)

			out := filepath.Join(t.TempDir(), "out")
			id = runDetached(t, c, rel, "-p", "2", "--param", "events=10000", "--param", "output="+out)
			waitJobState(t, c, id, "FINISHED", time.Minute)
			lines := committedLines(t, out)
			if len(lines) == 0 {
				t.Fatalf("%s wrote no output", q)
			}
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("output line %q is not a JSON object: %v", l, err)
				}
				if len(m) != len(cols) {
					t.Fatalf("output line %q: want exactly the columns %v", l, cols)
				}
				for _, col := range cols {
					if _, ok := m[col]; !ok {
						t.Fatalf("output line %q has no column %q (want %v)", l, col, cols)
					}
				}
			}
			t.Logf("%s: %d lines", q, len(lines))
		})
	}
}
