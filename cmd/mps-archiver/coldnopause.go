//go:build !coldpause

package main

import "time"

// coldPause is nil in a release build: the steps never pause (the e2e
// tests build with the coldpause tag, coldpause.go).
func coldPause() func(step string, month time.Time) { return nil }
