// Command mockernetes serves a Kubernetes API server for tests.
package main

import (
	"os"

	"github.com/mockernetes/mockernetes/pkg/cli"
)

func main() { os.Exit(cli.Main()) }
