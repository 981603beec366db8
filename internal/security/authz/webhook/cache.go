package webhook

import (
	"container/list"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/security/authz"
)

// maxCacheEntries bounds the decision cache. Distinct requests are cheap
// for a client to make (any job ID), so without a bound the cache would be
// a memory-exhaustion lever.
const maxCacheEntries = 10000

// maxCachedRequest is the largest request (encoded) that is cached: a big
// request is rare (a job touching much data) and would let a few entries
// take much memory.
const maxCachedRequest = 10 << 10

type cacheEntry struct {
	key      string
	decision authz.Decision
	reason   string
	expires  time.Time
}

// decisionCache is a size-bounded LRU of decisions with per-entry expiry.
type decisionCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front: most recently used
	items map[string]*list.Element
}

func newDecisionCache(max int) *decisionCache {
	return &decisionCache{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *decisionCache) get(key string, now time.Time) (authz.Decision, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return 0, "", false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return 0, "", false
	}
	c.ll.MoveToFront(el)
	return e.decision, e.reason, true
}

func (c *decisionCache) put(key string, d authz.Decision, reason string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.decision, e.reason, e.expires = d, reason, expires
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, decision: d, reason: reason, expires: expires})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

func (c *decisionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
