namespace Farm.Worker.Copy;

/// <summary>Numeric owner of a file in an image.</summary>
public readonly record struct FileOwner(uint Uid, uint Gid)
{
    /// <summary>0:0, Docker's default for everything COPY and ADD write.</summary>
    public static FileOwner Root => new(0, 0);

    public override string ToString() => $"{Uid}:{Gid}";

    /// <summary>
    /// Resolves a <c>--chown=user[:group]</c> value. Names come from the TARGET root's /etc/passwd and
    /// /etc/group (read as if chrooted there); a lone user (name or id) also gives the group: its primary group
    /// for a name, the same number for an id, as BuildKit does.
    /// See https://docs.docker.com/reference/dockerfile/#copy---chown---chmod.
    /// </summary>
    /// <exception cref="CopyOptionException">The value is malformed or names an unknown user or group.</exception>
    public static FileOwner Parse(string chown, string targetRoot)
    {
        ArgumentNullException.ThrowIfNull(chown);
        var colon = chown.IndexOf(':');
        var user = colon < 0 ? chown : chown[..colon];
        var group = colon < 0 ? null : chown[(colon + 1)..];
        if (user.Length == 0 || group is { Length: 0 })
        {
            throw new CopyOptionException($"--chown={chown} is malformed; write --chown=user, --chown=user:group or --chown=uid:gid");
        }

        uint uid;
        uint gid;
        if (uint.TryParse(user, out var numericUser))
        {
            uid = numericUser;
            gid = numericUser;
        }
        else
        {
            var entry = FindEntry(targetRoot, "/etc/passwd", user)
                ?? throw new CopyOptionException($"--chown={chown}: user '{user}' is not in the image's /etc/passwd; create the user in an earlier step or use a numeric uid");
            if (entry.Length < 4 || !uint.TryParse(entry[2], out uid) || !uint.TryParse(entry[3], out gid))
            {
                throw new CopyOptionException($"--chown={chown}: the image's /etc/passwd line for '{user}' is malformed; fix /etc/passwd or use a numeric uid");
            }
        }

        if (group is not null)
        {
            if (uint.TryParse(group, out var numericGroup))
            {
                gid = numericGroup;
            }
            else
            {
                var entry = FindEntry(targetRoot, "/etc/group", group)
                    ?? throw new CopyOptionException($"--chown={chown}: group '{group}' is not in the image's /etc/group; create the group in an earlier step or use a numeric gid");
                if (entry.Length < 3 || !uint.TryParse(entry[2], out gid))
                {
                    throw new CopyOptionException($"--chown={chown}: the image's /etc/group line for '{group}' is malformed; fix /etc/group or use a numeric gid");
                }
            }
        }

        return new FileOwner(uid, gid);
    }

    private static string[]? FindEntry(string root, string file, string name)
    {
        var path = RootedPath.Resolve(root, file, followFinal: true, confined: false);
        if (path is null || !File.Exists(path))
        {
            return null;
        }

        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith('#'))
            {
                continue;
            }

            var fields = line.Split(':');
            if (fields[0] == name)
            {
                return fields;
            }
        }

        return null;
    }
}
