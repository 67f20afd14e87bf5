// Command kubectl is upstream kubectl at the Kubernetes version this module
// pins (k8s.io/kubectl v0.37.2), built inside the module so tests can use a
// kubectl that matches the server. Stamp its version with the ldflags in the
// Makefile's kubectl target.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
