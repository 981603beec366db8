package kerberos

import (
	_ "github.com/jcmturner/gokrb5/v8/client"
	_ "github.com/jcmturner/gokrb5/v8/config"
	_ "github.com/jcmturner/gokrb5/v8/credentials"
	_ "github.com/jcmturner/gokrb5/v8/keytab"
	_ "github.com/jcmturner/gokrb5/v8/service"
	_ "github.com/jcmturner/gokrb5/v8/spnego"
)
