package mpsclient

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
)

// CredentialConfig says where credentials come from. Explicit keys win; then
// TKE's OIDC role (when its TKE_* variables are set), then the SDK's profile
// file, then, only when UseCVMRole is set, the CVM instance role. The CVM
// role is opt-in because probing the metadata service from a machine that is
// not a CVM hangs a start-up for seconds and reaches outside the host.
type CredentialConfig struct {
	SecretID     string
	SecretKey    string
	SessionToken string
	UseCVMRole   bool
	CVMRoleName  string
}

// ErrNoCredentials is returned when no source produced a credential.
var ErrNoCredentials = errors.New("no Tencent Cloud credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY " +
	"(or their *_FILE variants), a ~/.tencentcloud/credentials profile, TKE OIDC variables, or mps.use_cvm_role")

// ResolveCredential returns the credential cc points at. Errors never carry
// secret values.
func ResolveCredential(cc CredentialConfig) (common.CredentialIface, error) {
	switch {
	case cc.SecretID != "" && cc.SecretKey != "":
		if cc.SessionToken != "" {
			return common.NewTokenCredential(cc.SecretID, cc.SecretKey, cc.SessionToken), nil
		}
		return common.NewCredential(cc.SecretID, cc.SecretKey), nil
	case cc.SecretID != "" || cc.SecretKey != "":
		return nil, errors.New("credentials: TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY must be set together")
	}
	if os.Getenv("TKE_PROVIDER_ID") != "" && os.Getenv("TKE_WEB_IDENTITY_TOKEN_FILE") != "" {
		p, err := common.DefaultTkeOIDCRoleArnProvider()
		if err != nil {
			return nil, fmt.Errorf("credentials: TKE OIDC: %v", err)
		}
		return p.GetCredential()
	}
	if profileFileExists() {
		cred, err := common.DefaultProfileProvider().GetCredential()
		if err != nil {
			return nil, fmt.Errorf("credentials: profile file: %v", err)
		}
		return cred, nil
	}
	if cc.UseCVMRole {
		cred, err := common.NewCvmRoleProvider(cc.CVMRoleName).GetCredential()
		if err != nil {
			return nil, fmt.Errorf("credentials: CVM role: %v", err)
		}
		return cred, nil
	}
	return nil, ErrNoCredentials
}

func profileFileExists() bool {
	if p, ok := os.LookupEnv(common.EnvCredentialFile); ok {
		return p != ""
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(home, ".tencentcloud", "credentials"))
	return err == nil
}
