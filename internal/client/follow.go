package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/restapi"
)

// Output is one answer of GET /jobs/{id}/output.
type Output = restapi.JobOutput

// Output returns what a job's print sinks printed from line offset on.
func (c *Client) Output(ctx context.Context, id string, offset int64) (*Output, error) {
	var o Output
	path := fmt.Sprintf("/jobs/%s/output?offset=%d", url.PathEscape(id), offset)
	if err := c.do(ctx, http.MethodGet, path, nil, "", &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// FollowOptions say where Follow shows a job while it runs.
type FollowOptions struct {
	// Output receives the lines the job's print sinks print (print without a path), one
	// record per line; nil: they are not fetched.
	Output io.Writer
	// Status shows the job's progress in place; nil: none (not a terminal).
	Status *StatusLine
	// Notices receives notes for the user: lines lost, output not available. nil: none.
	Notices io.Writer
	// Interval between polls; 0: 200 ms.
	Interval time.Duration
}

// Follow polls a job until it reaches a final state, as Wait does, and meanwhile writes
// what its print sinks print to o.Output and its progress to o.Status. A TaskManager sends
// a task's output before it reports the task ended, so once the job has ended the lines
// fetched after it are all there are.
func (c *Client) Follow(ctx context.Context, id string, o FollowOptions) (*Job, error) {
	interval := o.Interval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	notices := o.Notices
	if notices == nil {
		notices = io.Discard
	}
	f := &follower{c: c, id: id, out: o.Output, status: o.Status, notices: notices}
	if o.Status != nil {
		defer o.Status.Clear()
	}
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		// Once the job has ended its output is complete: fetch all of it. Before, a few
		// pages at a time, so that the state keeps being shown.
		// Only when there is more to fetch: most jobs print nothing.
		pages := followPages
		if Terminal(j.State) {
			pages = -1
		}
		if pages < 0 || j.PrintedLines > f.offset {
			if err := f.drain(ctx, pages); err != nil {
				return j, err
			}
		}
		if Terminal(j.State) {
			return j, nil
		}
		if o.Status != nil {
			o.Status.Show(StatusText(j, time.Since(start)))
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-t.C:
		}
	}
}

// follower fetches a job's output from where it left off.
type follower struct {
	c       *Client
	id      string
	out     io.Writer
	status  *StatusLine
	notices io.Writer
	offset  int64
	dropped int64
}

// followPages is how many pages of output one poll of a running job fetches at most.
const followPages = 20

// drain writes the lines the JobManager has past the offset, page by page, up to pages
// pages (all of them when pages < 0).
func (f *follower) drain(ctx context.Context, pages int) error {
	for n := 0; f.out != nil && n != pages; n++ {
		o, err := f.c.Output(ctx, f.id, f.offset)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			// A JobManager without the endpoint: follow the state only.
			f.note(fmt.Sprintf("sluice: the JobManager does not serve printed output (%v); records printed by the job stay in its TaskManagers' stdout", err))
			f.out = nil
			return nil
		}
		if err != nil {
			return err
		}
		lost := max(o.NextOffset-int64(len(o.Lines))-f.offset, 0) + max(o.Dropped-f.dropped, 0)
		f.offset, f.dropped = o.NextOffset, max(o.Dropped, f.dropped)
		if lost > 0 {
			f.note(fmt.Sprintf("sluice: %d printed lines of job %s were lost before they could be shown (the JobManager keeps the last jobmanager.job-output.max-lines; TaskManagers drop lines while it is slow)", lost, f.id))
		}
		if len(o.Lines) == 0 {
			return nil
		}
		var b strings.Builder
		for _, l := range o.Lines {
			// Escaped again: the lines come from another process.
			b.WriteString(dataflow.EscapeLine(l))
			b.WriteByte('\n')
		}
		if f.status != nil {
			f.status.Clear()
		}
		if _, err := io.WriteString(f.out, b.String()); err != nil {
			return fmt.Errorf("write the output of job %s: %w", f.id, err)
		}
	}
	return nil
}

func (f *follower) note(msg string) {
	if f.status != nil {
		f.status.Clear()
	}
	fmt.Fprintln(f.notices, msg)
}
