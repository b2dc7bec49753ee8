package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// treeChecker walks a parsed YAML tree against the Go types it will be decoded into, so
// that every unknown key, duplicate key and badly typed value is reported at once with its
// full key path and line. It nulls each badly typed value and drops duplicate keys, so
// that the tree then decodes cleanly into whatever the file got right.
type treeChecker struct {
	problems []Problem
	src      *source
	active   map[*yaml.Node]bool // alias targets being walked, to refuse recursive aliases
	visits   int
}

// maxVisits bounds the walk, as aliases can make a small file expand enormously.
const maxVisits = 100_000

func newTreeChecker() *treeChecker {
	return &treeChecker{
		src:    &source{lines: map[string]int{}, set: map[string]bool{}},
		active: map[*yaml.Node]bool{},
	}
}

func (t *treeChecker) add(key string, line int, format string, args ...any) {
	t.problems = append(t.problems, Problem{Key: key, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// visit calls walk with n, or with the value an alias n refers to, unless that value
// contains the alias or the walk has gone on too long.
func (t *treeChecker) visit(n *yaml.Node, path string, walk func(*yaml.Node)) {
	if t.visits++; t.visits > maxVisits {
		if t.visits == maxVisits+1 {
			t.add(path, n.Line, "the file expands to more than %d values; use fewer aliases", maxVisits)
		}
		return
	}
	if n.Kind != yaml.AliasNode {
		walk(n)
		return
	}
	target := unalias(n)
	if t.active[target] {
		t.add(path, n.Line, "alias *%s refers to a value that contains it", n.Value)
		*n = yaml.Node{Kind: target.Kind, Tag: target.Tag, Line: n.Line, Column: n.Column} // empty, so decoding ends
		return
	}
	t.active[target] = true
	walk(target)
	delete(t.active, target)
}

// check walks node n, which is to be decoded into a value of type typ at key path.
func (t *treeChecker) check(n *yaml.Node, typ reflect.Type, path string) {
	t.visit(n, path, func(n *yaml.Node) { t.checkValue(n, typ, path) })
}

func (t *treeChecker) checkValue(n *yaml.Node, typ reflect.Type, path string) {
	if isNull(n) {
		return
	}
	if reflect.PointerTo(typ).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		t.custom(n, typ, path)
		return
	}
	switch typ.Kind() {
	case reflect.Pointer:
		t.check(n, typ.Elem(), path)
	case reflect.Struct:
		t.structure(n, typ, path)
	case reflect.Map:
		t.mapping(n, typ, path)
	case reflect.Slice:
		t.sequence(n, typ, path)
	default:
		t.scalar(n, typ, path)
	}
}

// structure checks a mapping's keys against the yaml tags of struct type typ.
func (t *treeChecker) structure(n *yaml.Node, typ reflect.Type, path string) {
	if !t.expect(n, yaml.MappingNode, path, "a mapping") {
		return
	}
	fields := yamlFields(typ)
	t.entries(n, path, func(key *yaml.Node, value *yaml.Node, keyPath string) {
		fieldType, ok := fields[key.Value]
		if !ok { // not decoded, so its value is left alone: it may be an anchor used elsewhere
			t.add(keyPath, key.Line, "unknown key%s", suggest(key.Value, fields))
			return
		}
		t.check(value, fieldType, keyPath)
	}, func(merged *yaml.Node) { t.structure(merged, typ, path) })
}

// mapping checks the values of a mapping decoded into map type typ.
func (t *treeChecker) mapping(n *yaml.Node, typ reflect.Type, path string) {
	if !t.expect(n, yaml.MappingNode, path, "a mapping") {
		return
	}
	t.entries(n, path, func(_ *yaml.Node, value *yaml.Node, keyPath string) {
		t.check(value, typ.Elem(), keyPath)
	}, func(merged *yaml.Node) { t.mapping(merged, typ, path) })
}

// entries calls each for every key/value pair of mapping n, after recording where the key
// is and rejecting non-scalar and duplicate keys (which are removed from n, as yaml
// refuses to decode them); merge keys (<<) go to merge.
func (t *treeChecker) entries(n *yaml.Node, path string, each func(key, value *yaml.Node, keyPath string), merge func(*yaml.Node)) {
	seen := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := unalias(n.Content[i]), n.Content[i+1]
		keyPath := joinKey(path, key.Value)
		switch first, dup := seen[key.Value]; {
		case key.ShortTag() == "!!merge":
			t.merge(value, path, merge)
		case key.Kind != yaml.ScalarNode:
			t.add(path, key.Line, "keys must be plain strings")
			continue
		case dup:
			t.add(keyPath, key.Line, "duplicate key (first at line %d)", first)
			continue
		default:
			seen[key.Value] = key.Line
			t.record(keyPath, key.Line, value)
			each(key, value, keyPath)
		}
		kept = append(kept, n.Content[i], value)
	}
	n.Content = kept
}

// merge applies a merge key's value: one mapping or a list of mappings.
func (t *treeChecker) merge(value *yaml.Node, path string, merge func(*yaml.Node)) {
	t.visit(value, path, func(value *yaml.Node) {
		if value.Kind != yaml.SequenceNode {
			merge(value)
			return
		}
		for _, item := range value.Content {
			t.visit(item, path, merge)
		}
	})
}

func (t *treeChecker) sequence(n *yaml.Node, typ reflect.Type, path string) {
	if !t.expect(n, yaml.SequenceNode, path, "a list") {
		return
	}
	for i, item := range n.Content {
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		t.record(itemPath, item.Line, item)
		t.check(item, typ.Elem(), itemPath)
	}
}

// scalar checks a plain value: any scalar is a string; other kinds must decode.
func (t *treeChecker) scalar(n *yaml.Node, typ reflect.Type, path string) {
	if !t.expect(n, yaml.ScalarNode, path, describeKind(typ)) || typ.Kind() == reflect.String {
		return
	}
	if err := n.Decode(reflect.New(typ).Interface()); err != nil {
		t.add(path, n.Line, "%q is not %s", n.Value, describeKind(typ))
		nullify(n)
	}
}

// custom checks a value whose type decodes itself (Duration), reporting its error.
func (t *treeChecker) custom(n *yaml.Node, typ reflect.Type, path string) {
	if err := n.Decode(reflect.New(typ).Interface()); err != nil {
		t.add(path, n.Line, "%s", err.Error())
		nullify(n)
	}
}

// expect reports and nulls n unless it is of the wanted kind.
func (t *treeChecker) expect(n *yaml.Node, kind yaml.Kind, path, want string) bool {
	if n.Kind == kind {
		return true
	}
	t.add(path, n.Line, "expected %s, found %s", want, describeNode(n))
	nullify(n)
	return false
}

func (t *treeChecker) record(path string, line int, value *yaml.Node) {
	t.src.lines[path] = line
	if !isNull(unalias(value)) {
		t.src.set[path] = true
	}
}

// yamlFields maps the yaml keys of struct type typ to their field types, the way
// go.yaml.in/yaml/v3 names them (tag name, else the lowercased field name).
func yamlFields(typ reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported() || name == "-":
		case slices.Contains(strings.Split(opts, ","), "inline"):
			maps.Copy(fields, yamlFields(f.Type))
		case name == "":
			fields[strings.ToLower(f.Name)] = f.Type
		default:
			fields[name] = f.Type
		}
	}
	return fields
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func unalias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// nullify turns n into a null, so decoding the tree skips it.
func nullify(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func describeKind(typ reflect.Type) string {
	switch typ.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	default:
		return "a " + typ.String()
	}
}

// suggest names the known key closest to an unknown one, or lists the known keys.
func suggest(unknown string, fields map[string]reflect.Type) string {
	known := slices.Sorted(maps.Keys(fields))
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(unknown, k); d < bestDist && d < len(unknown) {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(", did you mean %q?", best)
	}
	return "; known keys here: " + strings.Join(known, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
