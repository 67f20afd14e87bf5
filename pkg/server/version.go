package server

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
	basecompatibility "k8s.io/component-base/compatibility"
	baseversion "k8s.io/component-base/version"
)

// fallbackKubernetesVersion is used only when the binary carries no module
// information (a build with -buildvcs stripped of deps, which go never does).
const fallbackKubernetesVersion = "v1.37.2"

// KubernetesVersion is the release of k8s.io/kubernetes this binary is built
// from, read from the module graph so that it follows go.mod: the server
// reports it from /version and kubectl checks it.
func KubernetesVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/kubernetes" && dep.Version != "" && dep.Version != "(devel)" {
				return dep.Version
			}
		}
	}
	return fallbackKubernetesVersion
}

// pinnedVersion is the upstream effective version with Info() reporting the
// Kubernetes release even when the binary is not stamped through ldflags
// (go test, go run, the library in another module): upstream would answer
// "v0.0.0-master+$Format:%H$", which kubectl and client libraries reject.
type pinnedVersion struct {
	basecompatibility.MutableEffectiveVersion
	info apimachineryversion.Info
}

func newPinnedVersion(gitVersion string) *pinnedVersion {
	ev := basecompatibility.NewEffectiveVersionFromString(gitVersion, "", "")
	info := *ev.Info()
	if stamped := baseversion.Get(); stamped.GitVersion == gitVersion {
		info = stamped // ldflags agree: keep their commit and build date
	}
	info.GitVersion = gitVersion
	info.GitTreeState = "clean"
	return &pinnedVersion{MutableEffectiveVersion: ev, info: info}
}

func (v *pinnedVersion) Info() *apimachineryversion.Info {
	info := v.info
	return &info
}

// userAgent is the user agent of a Kubernetes component's client: client-go's
// DefaultKubernetesUserAgent with the component's name where client-go puts
// the binary's. The API server takes the field manager of a write from its
// first word, so the server's own writes show "kube-apiserver", the
// controllers' "kube-controller-manager", as in a cluster.
func userAgent(component string) string {
	commit := baseversion.Get().GitCommit
	switch {
	case commit == "" || strings.HasPrefix(commit, "$Format"):
		commit = "unknown"
	case len(commit) > 7:
		commit = commit[:7]
	}
	return fmt.Sprintf("%s/%s (%s/%s) kubernetes/%s", component, KubernetesVersion(), runtime.GOOS, runtime.GOARCH, commit)
}
