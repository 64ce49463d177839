package web

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
)

// emptyRefused maps "METHOD /api/v1/path/{id}" to the query parameters its
// document entry declares with a schema no empty string meets (a number, a
// boolean, a date-time, an enum, a pattern or a minimum length), and
// literalKey+"/api/v1/path" to the methods documented for a path without
// parameters. Read once from the embedded document.
var emptyRefused = sync.OnceValue(func() map[string][]string {
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string         `json:"name"`
				In     string         `json:"in"`
				Schema map[string]any `json:"schema"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		panic(fmt.Sprintf("web: the OpenAPI document does not parse: %v", err))
	}
	base := ""
	if len(doc.Servers) > 0 {
		base = strings.TrimSuffix(doc.Servers[0].URL, "/")
	}
	out := map[string][]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for _, p := range op.Parameters {
				if p.In == "query" && !admitsEmpty(p.Schema) {
					key := strings.ToUpper(method) + " " + base + path
					out[key] = append(out[key], p.Name)
				}
			}
			if !strings.Contains(path, "{") {
				out[literalKey+base+path] = append(out[literalKey+base+path], strings.ToUpper(method))
			}
		}
	}
	return out
})

// literalKey prefixes, in emptyRefused, the methods documented for a path
// without parameters ("/api/v1/drift/check").
const literalKey = "METHODS "

// admitsEmpty reports whether the empty string meets schema.
func admitsEmpty(schema map[string]any) bool {
	t, _ := schema["type"].(string)
	if t == "array" {
		// ?hide_name= is a list of one empty string.
		items, _ := schema["items"].(map[string]any)
		return items != nil && admitsEmpty(items)
	}
	if t != "" && t != "string" {
		return false
	}
	if _, ok := schema["format"]; ok {
		return false
	}
	if n, ok := schema["minLength"].(float64); ok && n > 0 {
		return false
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, any("")) {
		return false
	}
	if p, ok := schema["pattern"].(string); ok {
		if re, err := regexp.Compile(p); err == nil && !re.MatchString("") {
			return false
		}
	}
	return true
}

// refuseEmptyParams answers 400 to a request to the API route method path
// that gives a query parameter with no value where its document entry
// admits none (?until= for a date-time): leaving the parameter out is how
// a client says "none", and the document must say what the server takes.
//
// A route with a path parameter also answers 405 for a path the document
// names as a path of its own with other methods: GET /api/v1/drift/check
// is not drift check "check", POST being its only method.
func refuseEmptyParams(method, path string, next echo.HandlerFunc) echo.HandlerFunc {
	names := emptyRefused()[method+" "+openAPIPath(path)]
	if len(names) == 0 && !strings.Contains(path, ":") {
		return next
	}
	return func(c echo.Context) error {
		if methods, ok := emptyRefused()[literalKey+c.Request().URL.Path]; ok && !slices.Contains(methods, method) && strings.Contains(path, ":") {
			slices.Sort(methods)
			c.Response().Header().Set(echo.HeaderAllow, strings.Join(methods, ", "))
			return echo.ErrMethodNotAllowed
		}
		q := c.QueryParams()
		var v apperr.Validation
		for _, name := range names {
			if vals, ok := q[name]; ok && slices.Contains(vals, "") {
				v.Add(name, "is empty: leave the parameter out instead")
			}
		}
		if err := v.Err(); err != nil {
			return err
		}
		return next(c)
	}
}

// openAPIPath turns echo's :name parameters into OpenAPI's {name}.
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}
