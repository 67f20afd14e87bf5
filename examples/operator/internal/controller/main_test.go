/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"os"
	"testing"
)

// TestMain asks for the whole cluster before the suite starts its test
// environment. An unchanged envtest suite (suite_test.go is exactly what
// kubebuilder generates, only its envtest import differs) gets the whole
// cluster (the kube-controller-manager's controllers, a scheduler and one
// simulated node whose kubelet runs the pods) from this variable; envtest
// itself runs none: there, a Deployment makes no ReplicaSet, no pod starts
// and nothing is garbage-collected.
func TestMain(m *testing.M) {
	os.Setenv("MOCKERNETES_CONTROLLERS", "*")
	os.Exit(m.Run())
}
