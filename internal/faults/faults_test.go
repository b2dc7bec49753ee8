package faults

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	seed   = flag.Int64("faults.seed", 1, "seed of the fault suite's edits, faults and timings")
	only   = flag.String("faults.only", "", "comma-separated scenarios to run (default all)")
	binary = flag.String("faults.binary", "", "run this concord binary instead of building one from the tree (an older build, to compare)")
	keep   = flag.Bool("faults.keep", false, "keep the logs, configurations and Redis directories even when the suite passes")
)

// TestFaultSuite runs the fault suite (Suite) against the concord binary built from
// this tree and fails on any lost edit, divergence, event id with two contents, or
// fault never recovered from. It prints the table of every scenario.
func TestFaultSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite takes minutes")
	}
	if ok, why := HaveRedis(); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s", why)
		}
		t.Skipf("the fault suite needs a real redis-server with AOF: %s", why)
	}
	dir, err := os.MkdirTemp("", "concord-faults-")
	if err != nil {
		t.Fatal(err)
	}
	bin := *binary
	if bin == "" {
		// Built at every run: the suite tests whatever the tree holds now.
		bin = filepath.Join(dir, "concord")
		build := exec.Command("go", "build", "-o", bin, "../../cmd/concord")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	built := "the binary " + bin
	if *binary == "" {
		built = "the tree at " + treeVersion()
	}
	t.Logf("running the fault suite against %s", built)
	opts := Options{Binary: bin, Dir: dir, Seed: *seed, Log: logWriter{t}}
	var results []*Result
	for _, sc := range Suite() {
		if *only != "" && !strings.Contains(","+*only+",", ","+sc.Name+",") {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		r, err := Run(ctx, opts, sc)
		cancel()
		if err != nil {
			t.Fatalf("scenario %s could not run: %v (logs in %s)", sc.Name, err, dir)
		}
		results = append(results, r)
	}
	var b bytes.Buffer
	_ = WriteTable(&b, results)
	b.WriteString("\n")
	_ = WriteRecoveries(&b, results)
	b.WriteString("\n")
	WriteDLQ(&b, results)
	WriteProblems(&b, results)
	t.Logf("fault suite (seed %d, %s):\n%s", *seed, built, b.String())
	failed := false
	for _, r := range results {
		if r.Failed() {
			failed = true
			t.Errorf("%s: %s", r.Scenario, strings.Join(r.Problems(), "; "))
		}
	}
	if failed || *keep {
		t.Logf("logs, configurations and Redis directories kept in %s", dir)
		return
	}
	_ = os.RemoveAll(dir)
}

// logWriter sends the suite's lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// treeVersion names the commit the tree is at, "-dirty" when it has changes.
func treeVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "an unknown commit (git describe: " + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}
