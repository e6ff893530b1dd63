// Command daprd is the upstream Dapr sidecar, unchanged; built with `-tags stablecomponents`.
package main

import "github.com/dapr/dapr/cmd/daprd/app"

func main() {
	app.Run()
}
