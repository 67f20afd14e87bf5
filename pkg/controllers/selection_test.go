package controllers

import (
	"strings"
	"testing"

	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
)

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		values  []string
		on, off []string
		err     string
	}{
		{values: []string{"*"}, on: DefaultControllers, off: []string{names.NodeLifecycleController, names.PodGarbageCollectorController}},
		{values: []string{"*", "-garbagecollector"}, on: []string{names.DeploymentController}, off: []string{names.GarbageCollectorController}},
		{values: []string{"*", "-garbage-collector-controller", "nodelifecycle"}, on: []string{names.NodeLifecycleController}, off: []string{names.GarbageCollectorController}},
		{values: []string{"deployment", "replicaset"}, on: []string{names.DeploymentController, names.ReplicaSetController}, off: []string{names.GarbageCollectorController}},
		{values: []string{"none"}, off: DefaultControllers},
		{values: []string{"*", "frobnicator"}, err: `"frobnicator" is not a kube-controller-manager controller`},
		{values: []string{"serviceaccount-token"}, err: `"serviceaccount-token" is not`},
	} {
		s, err := Select(tc.values)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.values, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.values, err)
			continue
		}
		for _, name := range tc.on {
			if !s.Enabled(name) {
				t.Errorf("%v: %s off", tc.values, name)
			}
		}
		for _, name := range tc.off {
			if s.Enabled(name) {
				t.Errorf("%v: %s on", tc.values, name)
			}
		}
	}
	if s, _ := Select([]string{"none"}); !s.None() || s.Scheduler() {
		t.Error("none selects something")
	}
	for values, want := range map[string]bool{"*": true, "*,-scheduler": false, "deployment": false, "deployment,scheduler": true, "none": false} {
		s, err := Select(strings.Split(values, ","))
		if err != nil || s.Scheduler() != want {
			t.Errorf("%s: scheduler %v (%v), want %v", values, s.Scheduler(), err, want)
		}
		if s.Enabled(Scheduler) {
			t.Errorf("%s: the scheduler counted as a kube-controller-manager controller", values)
		}
	}
}
