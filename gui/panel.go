package gui

import (
	"fyne.io/fyne/v2"

	"modelpub/core/drafts"
	"modelpub/core/pipeline"
)

// panel is one tab on the right of the window: Overview, Shards, Variant,
// Model card, Publish. Every method runs on the UI goroutine.
type panel interface {
	// Content is the panel's widget tree, built once.
	Content() fyne.CanvasObject
	// SetPipeline shows a newly opened folder; nil means none is open.
	SetPipeline(p *pipeline.Pipeline)
}

// env is what panels need from the window around them.
type env struct {
	// win hosts dialogs (a test window in tests).
	win fyne.Window
	// spawn runs long work off the UI goroutine; tests make it synchronous.
	spawn func(func())
	// do runs f on the UI goroutine (fyne.Do); tests run f directly.
	do func(func())
	// choices are the user's output choices, shared by the panels that set
	// them (Shards, Variant) and the jobs that use them (Save, Publish).
	choices *choices
	// prefs keeps settings across runs (the recent folders); the app's
	// Preferences, in-memory ones in tests.
	prefs fyne.Preferences
	// hub is the Hub the Publish panel talks to and where it keeps the
	// token; nil is $HF_ENDPOINT or huggingface.co with the OS keyring.
	// Tests point it at an emulator and a mock keyring.
	hub *hubConfig
	// drafts keeps the model-card edits of each folder across runs, in the
	// user's config dir; tests use a temporary folder. nil keeps none
	// (draftsErr says why), and closing with edits then asks.
	drafts    *drafts.Store
	draftsErr error
}

// choices are the output settings chosen in the window. They are read and
// written on the UI goroutine only.
type choices struct {
	// MaxShardSize is the chosen shard limit in bytes; 0 keeps each
	// library's default (pipeline.SaveOptions).
	MaxShardSize int64
	// Variant is "", "fp16" or "bf16".
	Variant string

	listeners []func()
}

// onChange registers f, called after every change.
func (c *choices) onChange(f func()) { c.listeners = append(c.listeners, f) }

// set updates the choices and tells the listeners.
func (c *choices) set(maxShardSize int64, variant string) {
	if c.MaxShardSize == maxShardSize && c.Variant == variant {
		return
	}
	c.MaxShardSize, c.Variant = maxShardSize, variant
	for _, f := range c.listeners {
		f()
	}
}
