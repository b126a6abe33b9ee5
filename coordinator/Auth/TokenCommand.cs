namespace Farm.Coordinator.Auth;

/// <summary>
/// <c>farm-coordinator token create --tenant NAME [--role build|read|admin]</c>: mints a token and prints it once
/// (standard output, line 1) with the tokens file line that admits it (line 2); the coordinator keeps only the
/// line. Nothing is written anywhere: the operator appends the line to the tokens file and hands the token over.
/// </summary>
public static class TokenCommand
{
    public static bool Handles(string[] args) => args is ["token", ..];

    /// <returns>The exit code: 0, or 2 for a usage error.</returns>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        string? tenant = null;
        var role = FarmRole.Build;
        if (args is not ["token", "create", .. var rest])
        {
            return Usage(error, "expected 'token create'");
        }

        for (var i = 0; i < rest.Length; i++)
        {
            switch (rest[i])
            {
                case "--tenant" when i + 1 < rest.Length:
                    tenant = rest[++i];
                    break;
                case "--role" when i + 1 < rest.Length:
                    if (!Enum.TryParse(rest[++i], ignoreCase: true, out role) || !Enum.IsDefined(role))
                    {
                        return Usage(error, $"unknown role '{rest[i]}'");
                    }

                    break;
                default:
                    return Usage(error, $"unexpected '{rest[i]}'");
            }
        }

        if (tenant is null || !FarmTokens.IsTenantName(tenant))
        {
            return Usage(error, "--tenant NAME is required: letters, digits, '.', '_' and '-'");
        }

        var token = FarmTokens.Mint();
        output.WriteLine(token);
        output.WriteLine(FarmTokens.Line(tenant, token, role));
        error.WriteLine($"farm-coordinator: the token (line 1) is shown only now: give it to {tenant} (FARM_TOKEN or farm --token-file). Append line 2 to the tokens file ({CoordinatorAuthOptions.Section}:TokensFile) and restart the coordinator.");
        return 0;
    }

    private static int Usage(TextWriter error, string what)
    {
        error.WriteLine($"farm-coordinator: {what}. Usage: farm-coordinator token create --tenant NAME [--role build|read|admin]");
        return 2;
    }
}
