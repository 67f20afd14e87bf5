//go:build race

package settle

// raceSlowdown: the race detector slows code down 5–10 times.
const raceSlowdown = 5
