{{/*
Names, labels and the pieces of pod specs the gateway, the model server and the test Pod share.
Component helpers take a dict: (dict "context" $ "component" "gateway"|"model").
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "ocr-platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, at most 63 characters (DNS names). The release name alone when it
already contains the chart name.
*/}}
{{- define "ocr-platform.fullname" -}}
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

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "ocr-platform.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of a component's objects: <fullname>-gateway, <fullname>-model (room left for suffixes). */}}
{{- define "ocr-platform.componentName" -}}
{{- printf "%s-%s" (include "ocr-platform.fullname" .context | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{/* Labels that select the release's pods. */}}
{{- define "ocr-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ocr-platform.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "ocr-platform.labels" -}}
helm.sh/chart: {{ include "ocr-platform.chart" . }}
{{ include "ocr-platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ocr-platform
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select one component's pods. */}}
{{- define "ocr-platform.componentSelectorLabels" -}}
{{ include "ocr-platform.selectorLabels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's objects. */}}
{{- define "ocr-platform.componentLabels" -}}
{{ include "ocr-platform.labels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* ServiceAccount of every pod. */}}
{{- define "ocr-platform.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ocr-platform.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference of a component: repository@digest when a digest is set, else repository:tag. */}}
{{- define "ocr-platform.image" -}}
{{- $image := index .context.Values .component "image" }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .context.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* Name of the model's headless Service (deployment mode). */}}
{{- define "ocr-platform.modelServiceName" -}}
{{- include "ocr-platform.componentName" (dict "context" . "component" "model") }}
{{- end }}

{{/* Name of the InferenceService (inferenceservice mode); KServe adds "-predictor" to it. */}}
{{- define "ocr-platform.inferenceServiceName" -}}
{{- include "ocr-platform.componentName" (dict "context" . "component" "model") }}
{{- end }}

{{/*
Labels that select the model server's pods. deployment: the chart's own. inferenceservice: the
ones KServe puts on every predictor pod (both deployment modes), whatever predictor.labels say.
*/}}
{{- define "ocr-platform.modelPodSelectorLabels" -}}
{{- if eq .Values.model.mode "inferenceservice" -}}
serving.kserve.io/inferenceservice: {{ include "ocr-platform.inferenceServiceName" . }}
component: predictor
{{- else -}}
{{ include "ocr-platform.componentSelectorLabels" (dict "context" . "component" "model") }}
{{- end }}
{{- end }}

{{/* Secret of the model's bearer token: model.auth.existingSecret, else the chart's own. */}}
{{- define "ocr-platform.modelTokenSecretName" -}}
{{- default (printf "%s-token" (include "ocr-platform.componentName" (dict "context" . "component" "model"))) .Values.model.auth.existingSecret }}
{{- end }}

{{/*
The model token as variable .name of a container (gateway: OCR_GATEWAY_MODEL_TOKEN, model:
OCR_MODEL_AUTH_TOKEN): the same Secret and key for both, never a literal value.
*/}}
{{- define "ocr-platform.modelTokenEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ocr-platform.modelTokenSecretName" .context | quote }}
      key: {{ .context.Values.model.auth.existingSecretKey | quote }}
{{- end }}

{{/* Secret of the gateway's key id secret: gateway.keyIdSecret.existingSecret, else the chart's own. */}}
{{- define "ocr-platform.keyIdSecretName" -}}
{{- default (printf "%s-key-id" (include "ocr-platform.componentName" (dict "context" . "component" "gateway"))) .Values.gateway.keyIdSecret.existingSecret }}
{{- end }}

{{/*
OCR_GATEWAY_KEY_ID_SECRET of the gateway container: the HMAC secret naming API keys in the logs
and tenants in the model's cache, the same on every replica; never a literal value.
*/}}
{{- define "ocr-platform.keyIdSecretEnv" -}}
- name: OCR_GATEWAY_KEY_ID_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "ocr-platform.keyIdSecretName" . | quote }}
      key: {{ .Values.gateway.keyIdSecret.existingSecretKey | quote }}
{{- end }}

{{/* Whether the InferenceService runs as a plain Deployment + HPA (Standard, legacy RawDeployment). */}}
{{- define "ocr-platform.isvcStandard" -}}
{{- if has .Values.model.inferenceService.deploymentMode (list "Standard" "RawDeployment") }}true{{ end }}
{{- end }}

{{/*
Headless Service over the predictor pods (inferenceservice mode, Standard): KServe's own
<isvc>-predictor Service has a cluster IP. Not <isvc> itself: KServe names its Knative-mode
ExternalName Service so.
*/}}
{{- define "ocr-platform.predictorGrpcServiceName" -}}
{{- printf "%s-grpc" (include "ocr-platform.inferenceServiceName" .) }}
{{- end }}

{{/*
gRPC target the gateway calls: always a dns:/// target, so that the gateway's round_robin policy
keeps one HTTP/2 connection per address and spreads every call over them.
deployment: the chart's headless Service on the gRPC port; DNS returns every ready model pod.
inferenceservice, Standard (or RawDeployment): the chart's headless Service over KServe's
  predictor pods, port 8081. KServe's <isvc>-predictor Service has a cluster IP: one connection
  through it would pin each gateway pod to one predictor pod.
inferenceservice, Knative (or Serverless): the predictor route, <isvc>-predictor:80, through
  Knative's activator and queue-proxy, which balance per request and scale from zero.
*/}}
{{- define "ocr-platform.modelAddress" -}}
{{- $ns := .Release.Namespace }}
{{- if .Values.gateway.modelAddress }}
{{- .Values.gateway.modelAddress }}
{{- else if eq .Values.model.mode "deployment" }}
{{- printf "dns:///%s.%s.svc.cluster.local:8081" (include "ocr-platform.modelServiceName" .) $ns }}
{{- else if include "ocr-platform.isvcStandard" . }}
{{- printf "dns:///%s.%s.svc.cluster.local:8081" (include "ocr-platform.predictorGrpcServiceName" .) $ns }}
{{- else }}
{{- printf "dns:///%s-predictor.%s.svc.cluster.local:80" (include "ocr-platform.inferenceServiceName" .) $ns }}
{{- end }}
{{- end }}

{{/* OpenTelemetry variables of a component (only when otel.endpoint is set). */}}
{{- define "ocr-platform.otelEnv" -}}
{{- $otel := .context.Values.otel }}
{{- if $otel.endpoint -}}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $otel.protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "ocr-%s" .component | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $otel.sampler | quote }}
{{- if $otel.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $otel.samplerArg | quote }}
{{- end }}
- name: OTEL_K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.namespace.name=%s,k8s.pod.name=$(OTEL_K8S_POD_NAME),service.version=%s%s" .context.Release.Namespace .context.Chart.AppVersion (ternary (printf ",%s" $otel.resourceAttributes) "" (ne $otel.resourceAttributes "")) | quote }}
{{- end }}
{{- end }}

{{/*
Port of the OTLP endpoint (otel.endpoint): the one it names, else 443 for https and 80 for http.
*/}}
{{- define "ocr-platform.otlpPort" -}}
{{- $endpoint := .Values.otel.endpoint }}
{{- $hostPort := regexReplaceAll "^https?://" $endpoint "" | splitList "/" | first }}
{{- $port := regexFind ":[0-9]+$" $hostPort | trimPrefix ":" }}
{{- if $port }}{{ $port }}{{ else if hasPrefix "https://" $endpoint }}443{{ else }}80{{ end }}
{{- end }}

{{/* Extra env of a component from its `env` map, in name order. */}}
{{- define "ocr-platform.extraEnv" -}}
{{- range $name, $value := index .context.Values .component "env" }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* A soft (by default) spread of a component's pods over nodes. */}}
{{- define "ocr-platform.topologySpread" -}}
{{- $spread := .context.Values.topologySpread }}
{{- if $spread.enabled -}}
topologySpreadConstraints:
  - maxSkew: {{ $spread.maxSkew }}
    topologyKey: {{ $spread.topologyKey }}
    whenUnsatisfiable: {{ $spread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "ocr-platform.componentSelectorLabels" . | nindent 8 }}
{{- end }}
{{- end }}

{{/* Pod spec fields shared by every pod: account, pull secrets, security context. */}}
{{- define "ocr-platform.podCommon" -}}
serviceAccountName: {{ include "ocr-platform.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* The writable /tmp of a read-only root filesystem. */}}
{{- define "ocr-platform.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "ocr-platform.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Sleep before SIGTERM; the images are Debian-based and have /bin/sleep. */}}
{{- define "ocr-platform.preStop" -}}
{{- if gt (int .seconds) 0 -}}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .seconds }}"]
{{- end }}
{{- end }}

{{/* Whether a PodDisruptionBudget makes sense: more than one replica is asked for. */}}
{{- define "ocr-platform.wantsPdb" -}}
{{- $c := index .context.Values .component }}
{{- $replicas := ternary $c.autoscaling.minReplicas $c.replicaCount $c.autoscaling.enabled }}
{{- if and (eq .component "model") (eq .context.Values.model.mode "inferenceservice") }}
{{- $replicas = .context.Values.model.inferenceService.minReplicas }}
{{- end }}
{{- if and $c.pdb.enabled (gt (int $replicas) 1) }}true{{ end }}
{{- end }}

{{/* Checks of value combinations the schema cannot express. */}}
{{- define "ocr-platform.validate" -}}
{{- if and .Values.observability.podMonitor.enabled .Values.observability.serviceMonitor.enabled }}
{{- fail "enable observability.podMonitor or observability.serviceMonitor, not both (every target would be scraped twice)" }}
{{- end }}
{{- if and .Values.observability.prometheusRule.enabled (not .Values.observability.prometheusRule.runbookBaseUrl) }}
{{- fail "observability.prometheusRule.runbookBaseUrl is required: the runbook_url of each alert is relative to it" }}
{{- end }}
{{- $model := .Values.model }}
{{- if le (int $model.terminationGracePeriodSeconds) (add $model.preStopSleepSeconds $model.gracePeriodSeconds | int) }}
{{- fail "model.terminationGracePeriodSeconds must exceed model.preStopSleepSeconds + model.gracePeriodSeconds, or drains are cut short" }}
{{- end }}
{{- $gateway := .Values.gateway }}
{{- if le (int $gateway.terminationGracePeriodSeconds) (int $gateway.preStopSleepSeconds) }}
{{- fail "gateway.terminationGracePeriodSeconds must exceed gateway.preStopSleepSeconds" }}
{{- end }}
{{- if and $gateway.apiKeys.existingSecret $gateway.apiKeys.plaintext }}
{{- fail "set gateway.apiKeys.existingSecret or gateway.apiKeys.plaintext, not both" }}
{{- end }}
{{- $np := .Values.networkPolicy }}
{{- $gatewayOpen := not (and $np.enabled (or $np.gateway.from $np.gateway.ingressControllerNamespace)) }}
{{- range $gateway.trustedProxies }}
{{- if and $gatewayOpen (has . (list "*" "0.0.0.0/0" "::/0")) }}
{{- fail (printf "gateway.trustedProxies: %s trusts every address while any pod may reach the gateway, so any client could pick its address with X-Forwarded-For; list the ingress controller's CIDR, or narrow networkPolicy.gateway (ingressControllerNamespace or from)" .) }}
{{- end }}
{{- end }}
{{- range $gateway.ingress.paths }}
{{- $path := trimSuffix "/" .path }}
{{- if or (eq $path "/metrics") (hasPrefix "/metrics/" $path) (and (ne .pathType "Exact") (hasPrefix $path "/metrics")) }}
{{- fail (printf "gateway.ingress.paths: %s (%s) would publish /metrics, which stays cluster-internal; publish /gateway, or / with pathType Exact (gateway.ingress.rootPath)" .path .pathType) }}
{{- end }}
{{- end }}
{{- if eq $model.mode "inferenceservice" }}
{{- $isvc := $model.inferenceService }}
{{- if and (include "ocr-platform.isvcStandard" .) (not (has $isvc.scaleMetric (list "cpu" "memory"))) }}
{{- fail (printf "model.inferenceService.scaleMetric %s needs Knative; deploymentMode %s scales with an HPA on cpu or memory" $isvc.scaleMetric $isvc.deploymentMode) }}
{{- end }}
{{- if and (not (include "ocr-platform.isvcStandard" .)) (not (has $isvc.scaleMetric (list "concurrency" "rps"))) }}
{{- fail (printf "model.inferenceService.scaleMetric %s needs an HPA; deploymentMode %s (Knative Pod Autoscaler) scales on concurrency or rps" $isvc.scaleMetric $isvc.deploymentMode) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment of the model container, in both modes. */}}
{{- define "ocr-platform.modelEnv" -}}
{{- $ctx := dict "context" . "component" "model" -}}
- name: OCR_MODEL_HTTP_PORT
  value: "8080"
- name: OCR_MODEL_GRPC_PORT
  value: "8081"
- name: OCR_MODEL_WORKERS
  value: {{ .Values.model.workers | quote }}
- name: OCR_MODEL_WORKER_MEMORY_BYTES
  value: {{ .Values.model.workerMemoryBytes | int64 | quote }}
- name: OCR_MODEL_GRACE_PERIOD_S
  value: {{ .Values.model.gracePeriodSeconds | quote }}
- name: OCR_MODEL_MAX_CONNECTION_AGE_S
  value: {{ .Values.model.maxConnectionAgeSeconds | quote }}
{{ include "ocr-platform.modelTokenEnv" (dict "context" . "name" "OCR_MODEL_AUTH_TOKEN") }}
{{- with include "ocr-platform.otelEnv" $ctx }}{{ . | nindent 0 }}{{ end }}
{{- with include "ocr-platform.extraEnv" $ctx }}{{ . | trimPrefix "\n" | nindent 0 }}{{ end }}
{{- end }}

{{/* Startup and readiness of the model: grpc.health.v1 on 8081 reports SERVING once the model is loaded. */}}
{{- define "ocr-platform.modelGrpcProbes" -}}
startupProbe:
  grpc:
    port: 8081
  {{- toYaml .Values.model.probes.startup | nindent 2 }}
readinessProbe:
  grpc:
    port: 8081
  {{- toYaml .Values.model.probes.readiness | nindent 2 }}
{{- end }}
