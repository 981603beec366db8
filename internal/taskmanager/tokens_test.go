package taskmanager

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/tokens"
)

// fetchingJM answers FetchTokens with a newer set than the TaskManager holds.
type fetchingJM struct {
	controlpb.JobManagerClient
	asked []string
	set   *controlpb.TokenSet
}

func (f *fetchingJM) FetchTokens(_ context.Context, req *controlpb.FetchTokensRequest, _ ...grpc.CallOption) (*controlpb.FetchTokensResponse, error) {
	f.asked = append(f.asked, req.JobIds...)
	return &controlpb.FetchTokensResponse{Sets: []*controlpb.TokenSet{f.set}}, nil
}

func tokenSet(job string, version int64) *controlpb.TokenSet {
	return &controlpb.TokenSet{JobId: job, Version: version, Tokens: []*controlpb.DelegationToken{
		{Service: "kafka", Id: "t", Secret: "s", ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli()}}}
}

// TestTokensCatchUpAndDrop: a TaskManager that missed a push (the heartbeat answer names a
// newer version) fetches the job's tokens; it refuses tokens of a job it runs no task of, and
// drops a job's tokens when its last attempt there ends.
func TestTokensCatchUpAndDrop(t *testing.T) {
	tm := &TaskManager{id: "tm-1", log: slog.New(slog.DiscardHandler), jobs: map[attemptKey]*jobRun{}}
	tm.tokens = tokens.NewReceiver(tm.log)
	key := attemptKey{"j1", 0}
	tm.jobs[key] = &jobRun{key: key, tasks: map[[2]int]*runningTask{}}
	if err := tm.installTokens(tokenSet("j1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tm.installTokens(tokenSet("j2", 1)); err == nil {
		t.Fatal("tokens of a job without tasks here were installed")
	}
	jm := &fetchingJM{set: tokenSet("j1", 2)}
	tm.catchUpTokens(context.Background(), jm, map[string]int64{"j1": 1})
	if len(jm.asked) != 0 {
		t.Fatalf("fetched although up to date: %v", jm.asked)
	}
	tm.catchUpTokens(context.Background(), jm, map[string]int64{"j1": 2})
	if len(jm.asked) != 1 || tm.tokens.Version("j1") != 2 {
		t.Fatalf("missed update not fetched: asked %v, version %d", jm.asked, tm.tokens.Version("j1"))
	}
	tm.mu.Lock()
	delete(tm.jobs, key)
	tm.dropTokensLocked("j1")
	tm.mu.Unlock()
	if tm.tokens.Version("j1") != 0 || len(tm.tokens.Jobs()) != 0 {
		t.Fatal("tokens kept after the job's last task here ended")
	}
}
