// presets.go maps the --preset names to credpool's provider presets, with
// what check needs to know of each provider.

package main

import (
	"net/http"
	"slices"
	"strings"

	"github.com/credpool/credpool"
)

// preset is a provider, as the --preset flag names it.
type preset struct {
	option    func() credpool.Option // nil: "Authorization: Bearer", the default
	checkPath string                 // check's default path: a cheap GET that needs a valid key
	header    http.Header            // extra headers check sends, such as a required API version
}

// presets are the names --preset takes.
var presets = map[string]preset{
	"openai":     {checkPath: "/v1/models"},
	"anthropic":  {option: credpool.Anthropic, checkPath: "/v1/models", header: http.Header{"Anthropic-Version": {"2023-06-01"}}},
	"gemini":     {option: credpool.Gemini, checkPath: "/v1beta/models"},
	"azure":      {option: credpool.AzureOpenAI, checkPath: "/openai/models?api-version=2024-10-21"},
	"openrouter": {checkPath: "/api/v1/key"},
	"groq":       {checkPath: "/openai/v1/models"},
	"mistral":    {checkPath: "/v1/models"},
	"deepseek":   {checkPath: "/models"},
	"xai":        {checkPath: "/v1/models"},
	"github":     {option: credpool.GitHub, checkPath: "/user", header: http.Header{"Accept": {"application/vnd.github+json"}}},
}

// presetNames returns the preset names, sorted.
func presetNames() string {
	names := make([]string, 0, len(presets))
	for name := range presets {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// lookupPreset returns the preset called name and its credpool options. No
// name is the default, "Authorization: Bearer", with check's path /v1/models.
// An unknown name is a usage error that lists the names.
func lookupPreset(name string) (preset, []credpool.Option, error) {
	if name == "" {
		return preset{checkPath: "/v1/models"}, nil, nil
	}
	p, ok := presets[strings.ToLower(name)]
	if !ok {
		return preset{}, nil, usagef("unknown --preset %q; the presets are %s", name, presetNames())
	}
	if p.option == nil {
		return p, nil, nil
	}
	return p, []credpool.Option{p.option()}, nil
}
