// Package envtest is Mockernetes as a Go library: controller-runtime's
// envtest API (Environment, ControlPlane, AddUser, CRD and webhook
// installation) on a Kubernetes 1.37 API server that runs in the test's
// own process, so that switching an envtest suite over is a change of
// import path. Beyond envtest it can run the cluster's controllers, a
// scheduler and simulated nodes (Controllers), reset the cluster between
// tests (Reset, ForTest) and wait until it is quiet (Settle).
package envtest
