using Farm.Contracts;

namespace Farm.Cli.Build;

/// <summary>
/// <c>--secret</c> and <c>--ssh</c> of <c>farm build</c>, as docker buildx reads them: <c>id=ID,src=FILE</c>,
/// <c>id=ID,env=VARIABLE</c>, <c>type=file|env</c> (with <c>src</c>/<c>source</c> naming the file or the variable);
/// without <c>src</c> and <c>env</c>, the variable named ID when set, else the file named ID. <c>--ssh default</c>
/// (the agent of <c>SSH_AUTH_SOCK</c>) or <c>--ssh ID=SOCKET</c>. Values are read once, here, and go to the farm in
/// the <see cref="BuildSecretsHeader"/> of the submission only.
/// </summary>
internal static class BuildSecretFlags
{
    /// <summary>The values of <paramref name="secrets"/> and <paramref name="ssh"/>; null when neither was given.</summary>
    /// <exception cref="InvalidSecretFlagException">A value is malformed, or its file, variable or socket is missing (FARM5090).</exception>
    public static BuildSecretValues? Read(string[]? secrets, string[]? ssh)
    {
        if (secrets is not { Length: > 0 } && ssh is not { Length: > 0 })
        {
            return null;
        }

        var values = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var flag in secrets ?? [])
        {
            var (id, value) = Secret(flag);
            values[id] = value;
        }

        var agents = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var flag in ssh ?? [])
        {
            var (id, socket) = Agent(flag);
            agents[id] = socket;
        }

        return new BuildSecretValues { Secrets = values, SshAgents = agents };
    }

    private static (string Id, byte[] Value) Secret(string flag)
    {
        string? id = null, type = null, src = null, env = null;
        foreach (var field in flag.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = field.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? field : field[..eq];
            var value = eq < 0 ? string.Empty : field[(eq + 1)..];
            switch (key.ToLowerInvariant())
            {
                case "id":
                    id = value;
                    break;
                case "type":
                    type = value is "file" or "env" ? value : throw new InvalidSecretFlagException($"--secret type={value} is not a secret type; use type=file or type=env");
                    break;
                case "src" or "source":
                    src = value;
                    break;
                case "env":
                    env = value;
                    break;
                default:
                    throw new InvalidSecretFlagException($"--secret takes id=, src= (or source=), env= and type=, not '{key}': e.g. --secret id=npmrc,src=$HOME/.npmrc or --secret id=token,env=API_TOKEN");
            }
        }

        if (id is null || !BuildSecretsHeader.ValidId(id))
        {
            throw new InvalidSecretFlagException("--secret needs id=ID (letters, digits, '-', '_', '.'): e.g. --secret id=npmrc,src=$HOME/.npmrc");
        }

        var variable = env ?? (type == "env" ? src ?? id : null);
        if (variable is null && src is null && type is null && Environment.GetEnvironmentVariable(id) is not null)
        {
            variable = id;
        }

        if (variable is not null)
        {
            return Environment.GetEnvironmentVariable(variable) is { } text
                ? (id, System.Text.Encoding.UTF8.GetBytes(text))
                : throw new InvalidSecretFlagException($"--secret id={id} reads the environment variable {variable}, which is not set; export it, or pass src=FILE");
        }

        var path = src ?? id;
        try
        {
            var bytes = File.ReadAllBytes(path);
            return bytes.Length <= BuildSecretsHeader.MaxBytes
                ? (id, bytes)
                : throw new InvalidSecretFlagException($"--secret id={id}: {path} holds {bytes.Length} bytes, more than the {BuildSecretsHeader.MaxBytes} a build may pass");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidSecretFlagException($"--secret id={id} reads the file {path}, which cannot be read ({e.Message}); pass src=FILE or env=VARIABLE");
        }
    }

    private static (string Id, string Socket) Agent(string flag)
    {
        var eq = flag.IndexOf('=', StringComparison.Ordinal);
        var id = eq < 0 ? flag.Trim() : flag[..eq].Trim();
        var path = eq < 0 ? null : flag[(eq + 1)..].Split(',')[0].Trim();
        if (!BuildSecretsHeader.ValidId(id))
        {
            throw new InvalidSecretFlagException($"--ssh '{flag}' is not default or ID=SOCKET (an id of letters, digits, '-', '_', '.')");
        }

        path ??= Environment.GetEnvironmentVariable("SSH_AUTH_SOCK")
            ?? throw new InvalidSecretFlagException($"--ssh {id} forwards the agent of SSH_AUTH_SOCK, which is not set; start ssh-agent (eval $(ssh-agent); ssh-add), or pass --ssh {id}=SOCKET");
        var full = Path.GetFullPath(path);
        var info = new FileInfo(full);
        if (!info.Exists && !Directory.Exists(full))
        {
            throw new InvalidSecretFlagException($"--ssh {id}: {full} does not exist; pass the socket of a running ssh-agent");
        }

        if ((info.Attributes & FileAttributes.Device) == 0 && info.Exists && info.Length > 0)
        {
            // A key file: buildx loads it into an agent of its own; Farm forwards agents only.
            throw new InvalidSecretFlagException($"--ssh {id}: {full} is a file, not an agent's socket; load the key into ssh-agent (ssh-add {full}) and pass --ssh {id} (or --ssh {id}=$SSH_AUTH_SOCK)");
        }

        return (id, full);
    }
}
