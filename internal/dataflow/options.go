package dataflow

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// commonOptions are the keys every operator has; they live on OperatorSpec, not in its
// type's options.
var commonOptions = []string{"name", "type", "input", "parallelism"}

// optionField is one option of a type: a field of its options struct tagged `yaml:"name"`.
type optionField struct {
	name  string
	index []int
	want  string // what the message says is wanted; derived from the Go type unless tagged
	elem  string // slices: what each element must be
}

// optionFields lists the options of an options struct in field order, which is the order
// messages list them in.
func optionFields(def Definition) []optionField {
	t := reflect.TypeOf(def)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil // a type without options
	}
	var out []optionField
	for _, f := range reflect.VisibleFields(t.Elem()) {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		o := optionField{name: name, index: f.Index, want: f.Tag.Get("want"), elem: f.Tag.Get("elem")}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if o.want == "" {
			o.want = wantOf(ft)
		}
		if ft.Kind() == reflect.Slice && o.elem == "" {
			o.elem = wantOf(ft.Elem())
		}
		out = append(out, o)
	}
	return out
}

// wantOf words what a scalar of type t must be, as decodeScalar reports it.
func wantOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	}
	return "a " + t.String()
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// setOption decodes the value of one option into the field of the options struct. A field
// whose type implements yaml.Unmarshaler decodes itself from the node (an ordered mapping, for
// example); its errors are shown as they are.
func setOption(def Definition, f optionField, v *yaml.Node) error {
	fv := reflect.ValueOf(def).Elem().FieldByIndex(f.index)
	if fv.Addr().Type().Implements(unmarshalerType) {
		return fv.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(v)
	}
	if fv.Kind() == reflect.Pointer {
		p := reflect.New(fv.Type().Elem())
		if err := decodeValue(p.Elem(), f, v); err != nil {
			return err
		}
		fv.Set(p)
		return nil
	}
	return decodeValue(fv, f, v)
}

func decodeValue(fv reflect.Value, f optionField, v *yaml.Node) error {
	if fv.Kind() != reflect.Slice {
		return decodeScalar(v, fv.Addr().Interface(), f.want)
	}
	if v.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: want %s", v.Line, f.want)
	}
	for _, c := range v.Content {
		e := reflect.New(fv.Type().Elem())
		if err := decodeScalar(c, e.Interface(), f.elem); err != nil {
			return err
		}
		fv.Set(reflect.Append(fv, e.Elem()))
	}
	return nil
}
