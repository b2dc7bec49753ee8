package main

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3"); a build from a
// checkout reports the module version Go recorded, or "devel".
var version = ""

// buildInfo is what concord_build_info and --version report.
type buildInfo struct {
	Version, Revision, GoVersion string
	Modified                     bool
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Revision: "unknown", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

func (b buildInfo) String() string {
	s := b.Version + " (revision " + b.Revision
	if b.Modified {
		s += ", modified"
	}
	return s + ", " + b.GoVersion + ")"
}

// newRegistry is the metrics registry of run and demo alike: the Go runtime and
// process collectors and concord_build_info, to which each adds its own.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	b := currentBuild()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "concord_build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	info.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), info)
	return reg
}
