package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"syscall"
	"time"
)

// ProcessRSS reads the resident set size of process pid (0: this one) from
// /proc/<pid>/status (Linux), in bytes.
func ProcessRSS(pid int) (uint64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			break
		}
		kb, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("loadtest: no VmRSS in %s", path)
}

// SettledRSS is this process's resident set after a garbage collection that
// returns freed memory to the operating system: what it holds, not what
// it has not given back yet. For a gateway running in this process.
func SettledRSS() (uint64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	return ProcessRSS(0)
}

// ProcessCPU is the CPU time (user and system) this process has used.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is the unit of /proc/<pid>/stat's CPU times (USER_HZ), 100
// on every Linux architecture Go runs on.
const clockTicks = 100

// ProcessCPUOf is the CPU time (user and system, all threads) process pid
// has used, from /proc/<pid>/stat (Linux), at 10 ms resolution: for a
// process under test measured over seconds.
func ProcessCPUOf(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count the fields
	// after its closing one. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("loadtest: malformed /proc/%d/stat", pid)
	}
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("loadtest: malformed /proc/%d/stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: malformed /proc/%d/stat", pid)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// CPUPressure reads the machine's CPU pressure stall counter (Linux PSI,
// /proc/pressure/cpu "some" total): the time during which some runnable
// task waited for a CPU. Its growth over a run, divided by the run's
// length, says how much other work competed with the measurement.
func CPUPressure() (time.Duration, bool) {
	data, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("some "))
		if !ok {
			continue
		}
		for field := range bytes.FieldsSeq(rest) {
			if v, ok := bytes.CutPrefix(field, []byte("total=")); ok {
				us, err := strconv.ParseInt(string(v), 10, 64)
				return time.Duration(us) * time.Microsecond, err == nil
			}
		}
	}
	return 0, false
}

// pressureMeter measures the CPU pressure over a run.
type pressureMeter struct {
	start time.Time
	total time.Duration
	ok    bool
}

func startPressure() pressureMeter {
	total, ok := CPUPressure()
	return pressureMeter{start: time.Now(), total: total, ok: ok}
}

// percent is the share of the time since start during which some task
// waited for a CPU, or -1 where the machine does not tell.
func (p pressureMeter) percent() float64 {
	total, ok := CPUPressure()
	if !p.ok || !ok {
		return -1
	}
	return 100 * float64(total-p.total) / float64(time.Since(p.start))
}

// RuntimeMemory reads where this process's memory goes, from
// runtime/metrics, after a garbage collection: heap objects, goroutine
// stacks, the rest the runtime holds for the heap, and the goroutines.
func RuntimeMemory() map[string]uint64 {
	runtime.GC()
	names := map[string]string{
		"/memory/classes/heap/objects:bytes": "heap-objects",
		"/memory/classes/heap/stacks:bytes":  "goroutine-stacks",
		"/memory/classes/heap/unused:bytes":  "heap-unused",
		"/sched/goroutines:goroutines":       "goroutines",
	}
	samples := make([]metrics.Sample, 0, len(names))
	for name := range names {
		samples = append(samples, metrics.Sample{Name: name})
	}
	metrics.Read(samples)
	out := make(map[string]uint64, len(samples))
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			out[names[s.Name]] = s.Value.Uint64()
		}
	}
	return out
}
