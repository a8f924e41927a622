package verify

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestPodsCanReadTheirSecrets renders every overlay and, for each secret a
// container mounts, makes the file the kubelet would (owned by root, group
// fsGroup when the pod sets one, the volume's mode), then reads it as the
// container's user with the groups the runtime gives it. Strict decoding
// cannot see that a 0400 root-owned file is unreadable by uid 65532.
func TestPodsCanReadTheirSecrets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes root-owned files and reads them as another user: run it as root (CI does)")
	}
	for _, dir := range []string{"../base", "../overlays/example", "../overlays/cronjob"} {
		for name, o := range render(t, dir) {
			var pod corev1.PodSpec
			switch v := o.(type) {
			case *appsv1.Deployment:
				pod = v.Spec.Template.Spec
			case *batchv1.CronJob:
				pod = v.Spec.JobTemplate.Spec.Template.Spec
			default:
				continue
			}
			checkSecretsReadable(t, dir+" "+name, pod)
		}
	}
}

func checkSecretsReadable(t *testing.T, where string, pod corev1.PodSpec) {
	t.Helper()
	volumes := map[string]*corev1.SecretVolumeSource{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			volumes[v.Name] = v.Secret
		}
	}
	psc := pod.SecurityContext
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		uid, gid := int64(0), int64(0)
		if psc != nil && psc.RunAsUser != nil {
			uid = *psc.RunAsUser
		}
		if psc != nil && psc.RunAsGroup != nil {
			gid = *psc.RunAsGroup
		}
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			uid = *c.SecurityContext.RunAsUser
		}
		if c.SecurityContext != nil && c.SecurityContext.RunAsGroup != nil {
			gid = *c.SecurityContext.RunAsGroup
		}
		groups := []uint32{uint32(gid)}
		fileGID := int64(0)
		if psc != nil && psc.FSGroup != nil {
			fileGID = *psc.FSGroup
			groups = append(groups, uint32(*psc.FSGroup))
		}
		for _, m := range c.VolumeMounts {
			src, ok := volumes[m.Name]
			if !ok {
				continue
			}
			items := src.Items
			if len(items) == 0 {
				items = []corev1.KeyToPath{{Key: "key", Path: "key"}}
			}
			for _, it := range items {
				mode := int32(0o644)
				if src.DefaultMode != nil {
					mode = *src.DefaultMode
				}
				if it.Mode != nil {
					mode = *it.Mode
				}
				// Only the file's own bits may decide: its directory is
				// world-traversable, as a pod's mount path is.
				dir, err := os.MkdirTemp("", "secret-volume-")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				if err := os.Chmod(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(dir, "secret")
				if err := os.WriteFile(file, []byte("s3cr3t"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(file, 0, int(fileGID)); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(file, os.FileMode(mode)); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command("cat", file)
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
				if out, err := cmd.CombinedOutput(); err != nil || string(out) != "s3cr3t" {
					t.Errorf("%s/%s: %s (mode %#o, group %d) is unreadable as uid %d groups %v: %v %s",
						where, c.Name, filepath.Join(m.MountPath, it.Path), mode, fileGID, uid, groups, err, out)
				}
			}
		}
	}
}
