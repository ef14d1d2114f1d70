module github.com/marketplace-operator/marketplace-operator/hack/chart-readme

go 1.26.0

require go.yaml.in/yaml/v3 v3.0.5
