package server

import (
	"errors"

	"k8s.io/kubernetes/pkg/probe"
	"k8s.io/kubernetes/pkg/registry/core/componentstatus"
)

// components are what componentstatuses reports on, named as kube-apiserver
// names them: the scheduler, the controller manager and the store as
// etcd-0. kube-apiserver dials their health endpoints; here they run in
// the process and are asked directly. The registry is installed before the
// components are made: New fills in their checks before Run serves (nil:
// not run).
type components struct {
	controllers, scheduler func() error
}

func (c *components) servers() map[string]componentstatus.Server {
	return map[string]componentstatus.Server{
		"controller-manager": check(c.controllers, "no kube-controller-manager controllers run in this server (--controllers=none)"),
		"scheduler":          check(c.scheduler, "no scheduler runs in this server (no nodes, --controllers=none or -scheduler)"),
		"etcd-0":             healthCheck(func() error { return nil }), // the in-memory store answers while the server does
	}
}

func check(fn func() error, absent string) componentstatus.Server {
	if fn == nil {
		return healthCheck(func() error { return errors.New(absent) })
	}
	return healthCheck(fn)
}

// healthCheck is a component's health as its /healthz reports it: "ok", or
// unhealthy with the reason.
type healthCheck func() error

func (h healthCheck) DoServerCheck() (probe.Result, string, error) {
	if err := h(); err != nil {
		return probe.Failure, "", err
	}
	return probe.Success, "ok", nil
}
