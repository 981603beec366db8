package minicluster

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestKillTaskManager: a killed TaskManager stops and the JobManager no
// longer lists it, while the others stay registered; an index outside the
// cluster is an error naming the cluster's size.
func TestKillTaskManager(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.New()
	for k, v := range map[string]string{"heartbeat.interval": "50 ms", "heartbeat.timeout": "500 ms"} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Start(ctx, Options{Config: cfg, TaskManagers: 2, Slots: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if err := c.KillTaskManager(ctx, 2); err == nil || !strings.Contains(err.Error(), "has 2") {
		t.Errorf("KillTaskManager(2) of 2: %v, want an error naming the cluster's size", err)
	}
	killed, kept := c.TMs[0].ID(), c.TMs[1].ID()
	if err := c.KillTaskManager(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.Dial("tcp", c.TMs[0].DataAddress()); err == nil {
		conn.Close()
		t.Errorf("the killed TaskManager's data port %s still accepts connections", c.TMs[0].DataAddress())
	}
	ids := func() []string {
		resp, err := http.Get("http://" + c.JM.RESTAddress() + "/taskmanagers")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			TaskManagers []struct{ ID string } `json:"taskmanagers"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tm := range body.TaskManagers {
			out = append(out, tm.ID)
		}
		return out
	}
	// Without a job, the JobManager learns of the loss from the missed
	// heartbeats (with a job, from its failed tasks and refused calls).
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := ids()
		if !contains(got, kept) {
			t.Fatalf("taskmanagers %v: the one not killed, %s, is missing", got, kept)
		}
		if !contains(got, killed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("taskmanagers %v: the killed %s is still registered after heartbeat.timeout", got, killed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
