{{/* The chart name, overridable. */}}
{{- define "marketplace-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The base name of every object: the release name, followed by the chart name unless the release
name already contains it (release "mpo" gives "mpo-marketplace-operator", release
"marketplace-operator" gives "marketplace-operator").
*/}}
{{- define "marketplace-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "marketplace-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "marketplace-operator.labels" -}}
helm.sh/chart: {{ include "marketplace-operator.chart" . }}
{{ include "marketplace-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels selecting the manager's pods. */}}
{{- define "marketplace-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "marketplace-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end }}

{{/*
The manager's ServiceAccount: serviceAccount.name, or the full name (release "mpo" gives
"mpo-marketplace-operator") when the chart creates it.
*/}}
{{- define "marketplace-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "marketplace-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.create=false needs serviceAccount.name: an existing ServiceAccount in the release namespace" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The keys Secret the manager mounts: keys.existingSecret, or "<fullname>-keys" created from values
with keys.create. Exactly one of the two.
*/}}
{{- define "marketplace-operator.keysSecretName" -}}
{{- if and .Values.keys.create .Values.keys.existingSecret }}
{{- fail "keys: set either keys.existingSecret (a Secret you manage) or keys.create=true (the chart creates one), not both" }}
{{- else if .Values.keys.existingSecret }}
{{- .Values.keys.existingSecret }}
{{- else if .Values.keys.create }}
{{- printf "%s-keys" (include "marketplace-operator.fullname" .) }}
{{- else }}
{{- required "keys: the manager needs the KooGallery keys; set keys.existingSecret to a Secret with the files basic, kit, ak and sk, or keys.create=true with keys.basic, keys.kit, keys.ak and keys.sk" "" }}
{{- end }}
{{- end }}

{{/* The manager image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "marketplace-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Service in front of the marketplace endpoint. */}}
{{- define "marketplace-operator.marketplaceServiceName" -}}
{{- printf "%s-marketplace" (include "marketplace-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of the marketplace Service's port: https when the manager serves TLS itself. */}}
{{- define "marketplace-operator.marketplacePortName" -}}
{{- if .Values.marketplace.tls.secretName }}https{{ else }}http{{ end }}
{{- end }}

{{/* Labels of the helm test objects: not the manager's selector, so no Service sends them callbacks. */}}
{{- define "marketplace-operator.testLabels" -}}
helm.sh/chart: {{ include "marketplace-operator.chart" . }}
app.kubernetes.io/name: {{ include "marketplace-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
