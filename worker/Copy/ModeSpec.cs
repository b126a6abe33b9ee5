namespace Farm.Worker.Copy;

/// <summary>
/// A <c>--chmod</c> value: octal (<c>0755</c>) or a simple symbolic form (<c>u+x</c>, <c>a=rX,u+w</c>).
/// See https://docs.docker.com/reference/dockerfile/#copy---chown---chmod.
/// </summary>
public sealed class ModeSpec
{
    private readonly uint? _octal;
    private readonly (uint Who, char Op, string Perms)[] _clauses;
    private readonly string _text;

    private ModeSpec(string text, uint? octal, (uint, char, string)[] clauses)
    {
        _text = text;
        _octal = octal;
        _clauses = clauses;
    }

    /// <summary>Parses a --chmod value.</summary>
    /// <exception cref="CopyOptionException">The value is neither octal nor a simple symbolic mode.</exception>
    public static ModeSpec Parse(string chmod)
    {
        ArgumentNullException.ThrowIfNull(chmod);
        if (chmod.Length is > 0 and <= 5 && chmod.All(c => c is >= '0' and <= '7'))
        {
            var value = Convert.ToUInt32(chmod, 8);
            if (value <= 0xFFF)
            {
                return new ModeSpec(chmod, value, []);
            }
        }

        var clauses = new List<(uint, char, string)>();
        foreach (var clause in chmod.Split(','))
        {
            var i = 0;
            uint who = 0;
            for (; i < clause.Length && clause[i] is 'u' or 'g' or 'o' or 'a'; i++)
            {
                who |= clause[i] switch { 'u' => 0x9C0u, 'g' => 0x438u, 'o' => 0x207u, _ => 0xFFFu };
            }

            if (who == 0)
            {
                who = 0xFFF;
            }

            if (i >= clause.Length)
            {
                throw Malformed(chmod);
            }

            while (i < clause.Length)
            {
                var op = clause[i++];
                if (op is not ('+' or '-' or '='))
                {
                    throw Malformed(chmod);
                }

                var start = i;
                while (i < clause.Length && clause[i] is 'r' or 'w' or 'x' or 'X' or 's' or 't')
                {
                    i++;
                }

                clauses.Add((who, op, clause[start..i]));
            }
        }

        return new ModeSpec(chmod, null, [.. clauses]);
    }

    /// <summary>The permission bits (and setuid, setgid, sticky) a file gets.</summary>
    public uint Apply(uint permissions, bool isDirectory)
    {
        if (_octal is { } octal)
        {
            return octal;
        }

        var mode = permissions & 0xFFF;
        foreach (var (who, op, perms) in _clauses)
        {
            uint bits = 0;
            foreach (var p in perms)
            {
                bits |= p switch
                {
                    'r' => 0x124u,
                    'w' => 0x92u,
                    'x' => 0x49u,
                    'X' => isDirectory || (mode & 0x49) != 0 ? 0x49u : 0u,
                    's' => 0xC00u,
                    _ => 0x200u,
                };
            }

            bits &= who;
            mode = op switch
            {
                '+' => mode | bits,
                '-' => mode & ~bits,
                _ => (mode & ~(who & 0xFFF)) | bits,
            };
        }

        return mode;
    }

    public override string ToString() => _text;

    private static CopyOptionException Malformed(string chmod) =>
        new($"--chmod={chmod} is not a mode; write it in octal (--chmod=0755) or symbolically (--chmod=u=rwx,go=rx)");
}
