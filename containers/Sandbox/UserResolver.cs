using System.Globalization;

namespace Farm.Containers.Sandbox;

/// <summary>A resolved Dockerfile USER: the ids runc switches to and the HOME the process gets.</summary>
/// <param name="Uid">User id (<c>process.user.uid</c>).</param>
/// <param name="Gid">Primary group id (<c>process.user.gid</c>).</param>
/// <param name="AdditionalGids">Supplementary groups (<c>process.user.additionalGids</c>).</param>
/// <param name="Home">Home directory from /etc/passwd, <c>/</c> when the user has no entry.</param>
public sealed record ResolvedUser(uint Uid, uint Gid, IReadOnlyList<uint> AdditionalGids, string Home);

/// <summary>
/// Resolves a Dockerfile <see href="https://docs.docker.com/reference/dockerfile/#user">USER</see> value against the
/// image's /etc/passwd and /etc/group, with Docker's rules: names or numbers; numeric ids need no entry; a user's
/// supplementary groups are added only when no group is given.
/// </summary>
public static class UserResolver
{
    /// <summary>Resolves <paramref name="userSpec"/> (<c>user</c>, <c>user:group</c>, <c>uid</c>, <c>uid:gid</c>; empty is root).</summary>
    /// <exception cref="UnknownUserException">A name is not in the image's passwd or group file.</exception>
    public static ResolvedUser Resolve(string rootfs, string userSpec)
    {
        var spec = userSpec.Trim();
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var userPart = colon < 0 ? spec : spec[..colon];
        var groupPart = colon < 0 ? null : spec[(colon + 1)..];
        if (userPart.Length == 0)
        {
            userPart = "0";
        }

        var passwd = ReadEntries(rootfs, "/etc/passwd");
        var entry = passwd.FirstOrDefault(e => e.Length >= 7 && e[0] == userPart);
        uint uid;
        if (entry is null)
        {
            if (!TryParseId(userPart, out uid))
            {
                throw new UnknownUserException(userSpec,
                    $"user '{userPart}' (USER {userSpec}) is not in the image's /etc/passwd; create it in an earlier step (e.g. RUN adduser) or use a numeric uid.");
            }

            entry = passwd.FirstOrDefault(e => e.Length >= 7 && e[2] == userPart);
        }
        else
        {
            uid = ParseField(entry[2], "/etc/passwd", userSpec);
        }

        var gid = entry is null ? 0u : ParseField(entry[3], "/etc/passwd", userSpec);
        var home = entry is null || entry[5].Length == 0 ? "/" : entry[5];
        var groups = ReadEntries(rootfs, "/etc/group");

        if (!string.IsNullOrEmpty(groupPart))
        {
            var group = groups.FirstOrDefault(g => g.Length >= 3 && g[0] == groupPart);
            if (group is not null)
            {
                gid = ParseField(group[2], "/etc/group", userSpec);
            }
            else if (!TryParseId(groupPart, out gid))
            {
                throw new UnknownUserException(userSpec,
                    $"group '{groupPart}' (USER {userSpec}) is not in the image's /etc/group; create it in an earlier step (e.g. RUN addgroup) or use a numeric gid.");
            }

            return new ResolvedUser(uid, gid, [], home);
        }

        var additional = new List<uint>();
        if (entry is not null)
        {
            var name = entry[0];
            foreach (var g in groups)
            {
                if (g.Length >= 4 && g[3].Split(',').Contains(name) && uint.TryParse(g[2], NumberStyles.None, CultureInfo.InvariantCulture, out var sg) && !additional.Contains(sg))
                {
                    additional.Add(sg);
                }
            }
        }

        return new ResolvedUser(uid, gid, additional, home);
    }

    private static bool TryParseId(string text, out uint id) =>
        uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out id);

    private static uint ParseField(string text, string file, string userSpec) =>
        TryParseId(text, out var id)
            ? id
            : throw new UnknownUserException(userSpec, $"the image's {file} has a malformed id '{text}' for USER {userSpec}; fix the file in the image.");

    private static List<string[]> ReadEntries(string rootfs, string containerPath)
    {
        var path = RootfsPath.Resolve(rootfs, containerPath);
        if (!File.Exists(path))
        {
            return [];
        }

        return File.ReadLines(path)
            .Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.Split(':'))
            .ToList();
    }
}
