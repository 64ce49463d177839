package drivers

import "sort"

// sortedKeys returns m's keys in order, so tags and maps are sent to AWS
// deterministically.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
