// Command protoc-gen-gateway-openapi writes the gateway's OpenAPI 3.1
// description (a protoc/buf plugin).
//
// It runs the pinned protoc-gen-openapiv2 (grpc-gateway's generator, a Go
// tool of this module) on the same request, with the HTTP rules of the
// unary calls and of the streams, and turns its Swagger 2.0 output into
// OpenAPI 3.1: the maintained generator keeps mapping messages, fields,
// comments and HTTP rules, and this plugin adds what no proto can say and
// Swagger 2.0 cannot express: one media type per response
// (application/problem+json on every error), the problem schema, the
// Idempotency-Key header and the response headers, the streams' two media
// types (NDJSON and Server-Sent Events, Last-Event-ID, heartbeats, the end
// event), mutual TLS among the security schemes, and examples.
//
// Options (buf.gen.yaml opt), besides those passed on to protoc-gen-openapiv2:
//
//	stream_configuration=<file>  HTTP rules of the streams (gateway.yaml's format)
//	out=<name>                   the file to write (default gateway.openapi.json)
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "protoc-gen-gateway-openapi:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	raw, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	req := new(pluginpb.CodeGeneratorRequest)
	if err := proto.Unmarshal(raw, req); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	resp := generate(req)
	b, err := proto.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

// generate answers req; a failure is the response's error, as protoc
// plugins report them.
func generate(req *pluginpb.CodeGeneratorRequest) *pluginpb.CodeGeneratorResponse {
	doc, name, err := describe(req)
	if err != nil {
		return &pluginpb.CodeGeneratorResponse{Error: proto.String(err.Error())}
	}
	return &pluginpb.CodeGeneratorResponse{
		SupportedFeatures: proto.Uint64(uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)),
		File:              []*pluginpb.CodeGeneratorResponse_File{{Name: proto.String(name), Content: proto.String(string(doc))}},
	}
}

func describe(req *pluginpb.CodeGeneratorRequest) ([]byte, string, error) {
	var (
		passOn     []string
		rulesFile  string
		streamFile string
		name       = "gateway.openapi.json"
	)
	for opt := range strings.SplitSeq(req.GetParameter(), ",") {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "":
		case "stream_configuration":
			streamFile = v
		case "out":
			name = v
		case "grpc_api_configuration":
			rulesFile = v
		default:
			passOn = append(passOn, opt)
		}
	}
	if rulesFile == "" || streamFile == "" {
		return nil, "", fmt.Errorf("grpc_api_configuration and stream_configuration are required")
	}
	merged, streams, err := mergeRules(rulesFile, streamFile)
	if err != nil {
		return nil, "", err
	}
	defer os.Remove(merged)
	passOn = append(passOn, "grpc_api_configuration="+merged, "allow_merge=true", "merge_file_name=gateway", "output_format=json")

	sub := proto.Clone(req).(*pluginpb.CodeGeneratorRequest)
	sub.Parameter = proto.String(strings.Join(passOn, ","))
	swagger, err := runOpenAPIv2(sub)
	if err != nil {
		return nil, "", err
	}
	doc, err := convert(swagger, streams)
	if err != nil {
		return nil, "", err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, "", err
	}
	return append(b, '\n'), name, nil
}

// serviceConfig is the part of a google.api.Service file read here.
type serviceConfig struct {
	HTTP struct {
		Rules []map[string]any `yaml:"rules"`
	} `yaml:"http"`
}

// mergeRules writes the rules of both files to a temporary file for
// protoc-gen-openapiv2 and returns it with the operation ids of the streams
// ("Service_Method", as protoc-gen-openapiv2 names operations).
func mergeRules(rulesFile, streamFile string) (string, map[string]bool, error) {
	var all, streams serviceConfig
	for _, f := range []struct {
		path string
		into *serviceConfig
	}{{rulesFile, &all}, {streamFile, &streams}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return "", nil, err
		}
		if err := yaml.Unmarshal(b, f.into); err != nil {
			return "", nil, fmt.Errorf("%s: %w", f.path, err)
		}
	}
	ids := map[string]bool{}
	for _, r := range streams.HTTP.Rules {
		sel, _ := r["selector"].(string)
		parts := strings.Split(sel, ".")
		if len(parts) < 2 {
			return "", nil, fmt.Errorf("%s: rule without a selector", streamFile)
		}
		ids[parts[len(parts)-2]+"_"+parts[len(parts)-1]] = true
	}
	all.HTTP.Rules = append(all.HTTP.Rules, streams.HTTP.Rules...)
	b, err := yaml.Marshal(map[string]any{
		"type": "google.api.Service", "config_version": 3,
		"http": map[string]any{"rules": all.HTTP.Rules},
	})
	if err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp("", "gateway-rules-*.yaml")
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		os.Remove(f.Name())
		return "", nil, err
	}
	return f.Name(), ids, nil
}

// runOpenAPIv2 runs the pinned protoc-gen-openapiv2 on req and returns the
// Swagger 2.0 document it wrote.
func runOpenAPIv2(req *pluginpb.CodeGeneratorRequest) (map[string]any, error) {
	in, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "tool", "protoc-gen-openapiv2")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("protoc-gen-openapiv2: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	resp := new(pluginpb.CodeGeneratorResponse)
	if err := proto.Unmarshal(stdout.Bytes(), resp); err != nil {
		return nil, fmt.Errorf("protoc-gen-openapiv2's answer: %w", err)
	}
	if resp.GetError() != "" {
		return nil, fmt.Errorf("protoc-gen-openapiv2: %s", resp.GetError())
	}
	for _, f := range resp.GetFile() {
		if strings.HasSuffix(f.GetName(), ".json") {
			var doc map[string]any
			if err := json.Unmarshal([]byte(f.GetContent()), &doc); err != nil {
				return nil, fmt.Errorf("protoc-gen-openapiv2's %s: %w", f.GetName(), err)
			}
			return doc, nil
		}
	}
	return nil, fmt.Errorf("protoc-gen-openapiv2 wrote no JSON file")
}
