// Command etcd is etcd's own main (go.etcd.io/etcd/server/v3/etcdmain),
// built by the benchmark from the module proxy at the version its go.mod
// pins, so that the reference needs no download of a release binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
