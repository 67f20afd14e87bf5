package controllers

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	genericcontrollermanager "k8s.io/controller-manager/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
)

// DefaultControllers are the kube-controller-manager controllers `*`
// selects here: those that work without nodes, kubelets, clouds or metrics.
// Every other kube-controller-manager controller can still be named in
// --controllers; it then runs exactly as upstream's does.
var DefaultControllers = []string{
	names.DeploymentController,
	names.ReplicaSetController,
	names.ReplicationControllerController,
	names.StatefulSetController,
	names.DaemonSetController,
	names.JobController,
	names.CronJobController,
	names.TTLAfterFinishedController,
	names.GarbageCollectorController,
	names.NamespaceController,
	names.DisruptionController,
	names.EndpointsController,
	names.EndpointSliceController,
	names.EndpointSliceMirroringController,
	names.ServiceAccountController,
	names.RootCACertificatePublisherController,
	names.ResourceQuotaController,
	names.PersistentVolumeBinderController,
	names.PersistentVolumeClaimProtectionController,
	names.PersistentVolumeProtectionController,
	names.ClusterRoleAggregationController,
	names.ServiceCIDRController,
	names.ResourceClaimController,
}

// Scheduler is the name --controllers knows kube-scheduler by: on by
// default (where there are nodes), "-scheduler" leaves pods unscheduled.
const Scheduler = "scheduler"

// Selection is a parsed --controllers value: kube-controller-manager's
// syntax ("*" for the defaults, "name" to add one, "-name" to remove one,
// "none" for no controller at all, as envtest), with its names and aliases,
// and "scheduler" for kube-scheduler.
type Selection struct {
	enabled   sets.Set[string]
	scheduler bool
}

// descriptors are kube-controller-manager's controllers that can run here.
// The legacy service-account token controller is left out: its
// constructor needs the controller manager's root client builder, which
// upstream passes in unexported code (and it only fills token Secrets, which
// Kubernetes has not created on its own since 1.24).
func descriptors() map[string]*kcm.ControllerDescriptor {
	all := kcm.NewControllerDescriptors()
	delete(all, names.ServiceAccountTokenController)
	return all
}

// Select parses a --controllers value.
func Select(values []string) (Selection, error) {
	descriptors := descriptors()
	aliases := map[string]string{}
	for alias, name := range kcm.ControllerAliases() {
		if _, ok := descriptors[name]; ok {
			aliases[alias] = name
		}
	}
	canonical := func(name string) (string, error) {
		if _, ok := descriptors[name]; ok || name == Scheduler {
			return name, nil
		}
		if full, ok := aliases[name]; ok {
			return full, nil
		}
		return "", fmt.Errorf("--controllers: %q is not a kube-controller-manager controller (known: %s)", name, strings.Join(knownNames(), ", "))
	}
	var resolved []string
	for _, v := range values {
		v = strings.TrimSpace(v)
		switch {
		case v == "*" || v == "none" || v == "":
			resolved = append(resolved, v)
		case strings.HasPrefix(v, "-"):
			name, err := canonical(v[1:])
			if err != nil {
				return Selection{}, err
			}
			resolved = append(resolved, "-"+name)
		default:
			name, err := canonical(v)
			if err != nil {
				return Selection{}, err
			}
			resolved = append(resolved, name)
		}
	}
	enabled := sets.New[string]()
	if len(resolved) == 1 && resolved[0] == "none" {
		return Selection{enabled: enabled}, nil
	}
	defaults := sets.New(DefaultControllers...)
	disabledByDefault := sets.NewString()
	for name := range descriptors {
		if !defaults.Has(name) {
			disabledByDefault.Insert(name)
		}
	}
	for name := range descriptors {
		if genericcontrollermanager.IsControllerEnabled(name, disabledByDefault, resolved) {
			enabled.Insert(name)
		}
	}
	return Selection{enabled: enabled, scheduler: genericcontrollermanager.IsControllerEnabled(Scheduler, disabledByDefault, resolved)}, nil
}

// Scheduler reports whether kube-scheduler runs (where there are nodes).
func (s Selection) Scheduler() bool { return s.scheduler }

// Enabled reports whether the named controller (canonical name) runs.
func (s Selection) Enabled(name string) bool { return s.enabled.Has(name) }

// None reports whether no kube-controller-manager controller runs
// (envtest's behaviour).
func (s Selection) None() bool { return s.enabled.Len() == 0 }

// Names lists the selected controllers.
func (s Selection) Names() []string { return sets.List(s.enabled) }

// knownNames are the short names (kube-controller-manager's aliases, as its
// --controllers help lists them) of the controllers that can run here.
func knownNames() []string {
	valid := descriptors()
	out := []string{Scheduler}
	for alias, name := range kcm.ControllerAliases() {
		if _, ok := valid[name]; ok {
			out = append(out, alias)
		}
	}
	sort.Strings(out)
	return out
}
