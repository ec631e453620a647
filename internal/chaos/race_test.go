//go:build chaos && race

package chaos_test

const raceEnabled = true
