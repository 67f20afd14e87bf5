//go:build !race

package settle

const raceSlowdown = 1
