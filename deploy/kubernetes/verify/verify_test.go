// Package verify renders the Kubernetes manifests with kustomize and decodes
// every object strictly into the Kubernetes API's Go types. It is its own
// module so that kustomize and the Kubernetes types stay out of the
// archiver's dependencies.
package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// render builds one kustomization and decodes each object strictly.
func render(t *testing.T, dir string) map[string]any {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := map[string]any{}
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			t.Fatal(err)
		}
		var obj any
		switch r.GetKind() {
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "CronJob":
			obj = &batchv1.CronJob{}
		case "Service":
			obj = &corev1.Service{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Secret":
			obj = &corev1.Secret{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "Namespace":
			obj = &corev1.Namespace{}
		case "PrometheusRule":
			obj = &monitoringv1.PrometheusRule{}
		case "ServiceMonitor":
			obj = &monitoringv1.ServiceMonitor{}
		case "NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		default:
			t.Fatalf("%s: no Go type for kind %s", dir, r.GetKind())
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly: %v", dir, r.GetKind(), r.GetName(), err)
		}
		out[r.GetKind()+"/"+r.GetName()] = obj
	}
	return out
}

func checkPod(t *testing.T, where string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context is not restricted: %+v", where, psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: service account token is mounted", where)
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s/%s: container security context is not restricted: %+v", where, c.Name, sc)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: no memory request/limit", where, c.Name)
		}
		for _, e := range c.Env {
			if strings.Contains(strings.ToLower(e.Name), "secret_key") && e.Value != "" && !strings.HasSuffix(e.Name, "_FILE") {
				t.Errorf("%s/%s: secret value inline in %s", where, c.Name, e.Name)
			}
		}
	}
}

func TestBase(t *testing.T) {
	objs := render(t, "../base")
	d, ok := objs["Deployment/mps-archiver"].(*appsv1.Deployment)
	if !ok {
		t.Fatalf("no Deployment: %v", keys(objs))
	}
	checkPod(t, "Deployment", d.Spec.Template.Spec)
	c := d.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("probes are not /healthz and /readyz")
	}
	if *d.Spec.Replicas != 2 || len(d.Spec.Template.Spec.InitContainers) != 1 || d.Spec.Template.Spec.InitContainers[0].Args[0] != "migrate" {
		t.Error("want 2 replicas and a migrate init container")
	}
	if _, ok := objs["PrometheusRule/mps-archiver"]; !ok {
		t.Error("no PrometheusRule")
	}
	// The ConfigMap's name carries its content's hash, and the pods refer
	// to that name: a config change rolls them.
	var cm string
	for k := range objs {
		if strings.HasPrefix(k, "ConfigMap/mps-archiver-") {
			cm = strings.TrimPrefix(k, "ConfigMap/")
		}
	}
	if cm == "" || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != cm {
		t.Errorf("the ConfigMap has no hash suffix, or the Deployment does not use it: %q vs %v", cm, c.EnvFrom)
	}
	np, ok := objs["NetworkPolicy/mps-archiver"].(*networkingv1.NetworkPolicy)
	if !ok || np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "mps-archiver" || len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("no NetworkPolicy selecting the pods with ingress and egress rules: %v", np)
	}
	// Operator users scrape by ServiceMonitor: it selects the Service by
	// its labels and scrapes the Service's named port.
	sm, ok := objs["ServiceMonitor/mps-archiver"].(*monitoringv1.ServiceMonitor)
	svc := objs["Service/mps-archiver"].(*corev1.Service)
	if !ok {
		t.Fatal("no ServiceMonitor beside the PrometheusRule")
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s; the Service has %v", k, v, svc.Labels)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("the ServiceMonitor scrapes %+v; the Service's port is %s", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
	}
	rules := objs["PrometheusRule/mps-archiver"].(*monitoringv1.PrometheusRule)
	var alerts []string
	for _, r := range rules.Spec.Groups[0].Rules {
		alerts = append(alerts, r.Alert)
	}
	if !strings.Contains(strings.Join(alerts, ","), "RetentionHeadroom") || !strings.Contains(strings.Join(alerts, ","), "SyncFailing") {
		t.Errorf("alerts %v", alerts)
	}
}

func TestExampleOverlay(t *testing.T) {
	objs := render(t, "../overlays/example")
	var secret *corev1.Secret
	for k, o := range objs {
		if strings.HasPrefix(k, "Secret/mps-archiver") {
			secret = o.(*corev1.Secret)
		}
	}
	if secret == nil {
		t.Fatalf("no generated Secret: %v", keys(objs))
	}
	for k, v := range secret.Data {
		if !strings.Contains(string(v), "CHANGE-ME") {
			t.Errorf("example secret %s holds a value that is not a placeholder", k)
		}
	}
	d := objs["Deployment/mps-archiver"].(*appsv1.Deployment)
	if !strings.HasPrefix(d.Spec.Template.Spec.Containers[0].Image, "registry.example.com/mps-archiver:") {
		t.Errorf("image %s", d.Spec.Template.Spec.Containers[0].Image)
	}
	if d.Spec.Template.Spec.Volumes[0].Secret.SecretName != secret.Name {
		t.Errorf("the Deployment mounts %s, the Secret is %s", d.Spec.Template.Spec.Volumes[0].Secret.SecretName, secret.Name)
	}
}

func TestCronJobOverlay(t *testing.T) {
	objs := render(t, "../overlays/cronjob")
	cj, ok := objs["CronJob/mps-archiver-sync"].(*batchv1.CronJob)
	if !ok {
		t.Fatalf("no CronJob: %v", keys(objs))
	}
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args[0] != "sync" {
		t.Error("the CronJob must run sync with concurrencyPolicy Forbid")
	}
	checkPod(t, "CronJob", cj.Spec.JobTemplate.Spec.Template.Spec)
	for _, ef := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].EnvFrom {
		if ef.ConfigMapRef != nil {
			if _, ok := objs["ConfigMap/"+ef.ConfigMapRef.Name]; !ok || !strings.HasPrefix(ef.ConfigMapRef.Name, "mps-archiver-") {
				t.Errorf("the CronJob refers to ConfigMap %s, not the generated one", ef.ConfigMapRef.Name)
			}
		}
	}
	for _, gone := range []string{"Deployment/mps-archiver", "Service/mps-archiver", "ServiceMonitor/mps-archiver", "PrometheusRule/mps-archiver"} {
		if _, ok := objs[gone]; ok {
			t.Errorf("the cronjob overlay still has %s", gone)
		}
	}
	// Monitoring a Job: it pushes to a Pushgateway, its rules read that,
	// and the NetworkPolicy lets it reach the Pushgateway.
	if _, ok := objs["PrometheusRule/mps-archiver-sync"]; !ok {
		t.Error("the cronjob overlay ships no rules")
	}
	var cm *corev1.ConfigMap
	for k, o := range objs {
		if strings.HasPrefix(k, "ConfigMap/mps-archiver-") {
			cm = o.(*corev1.ConfigMap)
		}
	}
	if cm == nil || !strings.HasPrefix(cm.Data["MPS_ARCHIVER_PUSHGATEWAY"], "http://") || cm.Data["MPS_ENDPOINT"] == "" {
		t.Errorf("the CronJob's ConfigMap sets no Pushgateway (or lost the base's settings): %v", cm)
	}
	// The push's instance must stay the same from one Job to the next: the
	// default, the host name, is the pod's name, new with every run, and
	// each run would leave a group of its own on the Pushgateway.
	env := map[string]corev1.EnvVar{}
	instance := ""
	for _, e := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
		if e.Name == "MPS_ARCHIVER_PUSHGATEWAY_INSTANCE" {
			instance = e.Value
		}
	}
	if instance == "" {
		t.Error("the CronJob sets no MPS_ARCHIVER_PUSHGATEWAY_INSTANCE: every Job would push under its pod's name")
	}
	for _, ref := range regexp.MustCompile(`\$\(([A-Za-z0-9_]+)\)`).FindAllStringSubmatch(instance, -1) {
		e, ok := env[ref[1]]
		if !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
			t.Errorf("MPS_ARCHIVER_PUSHGATEWAY_INSTANCE %q refers to %s, which is not the namespace: %+v", instance, ref[1], e)
		}
	}
	np := objs["NetworkPolicy/mps-archiver"].(*networkingv1.NetworkPolicy)
	reach := false
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			if p.Port != nil && p.Port.IntValue() == 9091 {
				reach = true
			}
		}
	}
	if !reach || len(np.Spec.Ingress) != 0 {
		t.Errorf("the cronjob's NetworkPolicy: egress to 9091 %v, ingress %v", reach, np.Spec.Ingress)
	}
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return fmt.Sprint(ks)
}
