{{/*
Shared pieces of the Applications. Every Application gets the same sync policy: automated with
prune and self-heal, namespaces created on demand, and retried with exponential backoff.
*/}}

{{/* The pinned revision of this repository; refuses a branch name or an empty value. */}}
{{- define "apps.revision" -}}
{{- $rev := required "targetRevision is required (a tag such as v0.1.0)" .Values.targetRevision | toString -}}
{{- if has $rev (list "HEAD" "main" "master") -}}
{{- fail (printf "targetRevision must be a pinned tag or commit, not %q" $rev) -}}
{{- end -}}
{{- $rev -}}
{{- end -}}

{{- define "apps.repoURL" -}}
{{- required "repoURL is required (the Git URL Argo CD clones)" .Values.repoURL -}}
{{- end -}}

{{/*
syncPolicy of an Application. Call with (dict "root" $ "extraSyncOptions" (list ...)).
*/}}
{{- define "apps.syncPolicy" -}}
{{- $retry := .root.Values.syncRetry -}}
syncPolicy:
  automated:
    prune: true
    selfHeal: true
  syncOptions:
    - CreateNamespace=true
    {{- range .extraSyncOptions }}
    - {{ . }}
    {{- end }}
  retry:
    limit: {{ int $retry.limit }}
    backoff:
      duration: {{ $retry.backoff.duration | quote }}
      factor: {{ int $retry.backoff.factor }}
      maxDuration: {{ $retry.backoff.maxDuration | quote }}
{{- end -}}

{{/* The second source of a multi-source Application: this repository, referenced as $values. */}}
{{- define "apps.valuesSource" -}}
- repoURL: {{ include "apps.repoURL" . }}
  targetRevision: {{ include "apps.revision" . }}
  ref: values
{{- end -}}

{{/*
Web address of the repository's files at the pinned revision, the base of the relative
runbook_url of each alert: https://host/org/repo/blob/<revision> from an https or scp-style
(git@host:org/repo.git) repoURL. .Values.runbookBaseUrl replaces it when set.
*/}}
{{- define "apps.runbookBaseUrl" -}}
{{- if .Values.runbookBaseUrl -}}
{{- .Values.runbookBaseUrl -}}
{{- else -}}
{{- $url := include "apps.repoURL" . | trimSuffix "/" | trimSuffix ".git" | trimPrefix "ssh://" -}}
{{- if hasPrefix "git@" $url -}}
{{- $url = printf "https://%s" (trimPrefix "git@" $url | replace ":" "/") -}}
{{- end -}}
{{- printf "%s/blob/%s" $url (include "apps.revision" .) -}}
{{- end -}}
{{- end -}}
