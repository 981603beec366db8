package taskmanager

import (
	"bufio"
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/processlog"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// processStats describe this process and its machine for the JobManager's
// GET /taskmanagers/{id} (Flink's hardware and memory figures).
func processStats(started time.Time) *controlpb.ProcessStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cpu := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}}
	metrics.Read(cpu)
	p := &controlpb.ProcessStats{
		CpuCores: int32(runtime.NumCPU()), HeapUsed: int64(ms.HeapAlloc), HeapCommitted: int64(ms.HeapSys),
		NonHeapUsed: int64(ms.StackInuse + ms.MSpanInuse + ms.MCacheInuse + ms.OtherSys), NonHeapCommitted: int64(ms.Sys - ms.HeapSys),
		GcCount: int64(ms.NumGC), GcTimeMs: int64(ms.PauseTotalNs / 1e6), Goroutines: int32(runtime.NumGoroutine()),
		UptimeMs: time.Since(started).Milliseconds(),
	}
	if limit := readMemoryLimit(); limit > 0 {
		p.HeapMax = limit
	}
	if cpu[0].Value.Kind() == metrics.KindFloat64 {
		p.CpuTimeMs = int64(cpu[0].Value.Float64() * 1000)
	}
	p.PhysicalMemory, p.FreeMemory = memInfo()
	return p
}

// readMemoryLimit is the Go runtime's memory limit (GOMEMLIMIT), 0 without one.
func readMemoryLimit() int64 {
	s := []metrics.Sample{{Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[0].Value.Uint64() >= 1<<62 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// memInfo reads the machine's total and available memory from
// /proc/meminfo; zeros where there is none.
func memInfo() (total, free int64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = kb << 10
		case "MemAvailable:":
			free = kb << 10
		}
	}
	return total, free
}

// ListLogs lists this TaskManager's log files (env.log.dir). The service
// ACL lets only the JobManager ask; the JobManager asks only for callers
// allowed `view` on `logs`.
func (s *rpcServer) ListLogs(ctx context.Context, _ *controlpb.ListLogsRequest) (*controlpb.ListLogsResponse, error) {
	logs, err := s.tm.logFiles.List()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	out := &controlpb.ListLogsResponse{}
	for _, l := range logs {
		out.Logs = append(out.Logs, &controlpb.LogFileInfo{Name: l.Name, Size: l.Size, MtimeMs: l.MTime})
	}
	return out, nil
}

// ReadLog returns the end of one of this TaskManager's log files: only
// the names ListLogs lists, never a path.
func (s *rpcServer) ReadLog(ctx context.Context, req *controlpb.ReadLogRequest) (*controlpb.ReadLogResponse, error) {
	data, truncated, err := s.tm.logFiles.Read(req.Name, req.MaxBytes)
	if errors.Is(err, processlog.ErrNoSuchLog) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &controlpb.ReadLogResponse{Data: data, Truncated: truncated}, nil
}
