/// Every failure the core reports. Messages name the field, the value and what was expected;
/// the ABI turns each case into a status code and the Python layer into an exception class.
public enum SolidXCError: Error, CustomStringConvertible, Equatable {
    /// Wrong user input. `field` is the input field (for example "ecut" or "atoms[1].position").
    case input(field: String, message: String)
    /// An SCF or response loop did not reach its tolerance. `history` holds the residuals.
    case convergence(message: String, history: [Double])
    /// A user callback (registered functional) failed or returned non-finite values.
    case callback(message: String)
    /// The calculation would need more memory than the machine has.
    case memory(message: String)
    /// A failure inside a numerical library (LAPACK info != 0, FFTW plan failure).
    case numerical(message: String)

    public var description: String {
        switch self {
        case let .input(field, message): return "\(field): \(message)"
        case let .convergence(message, _): return message
        case let .callback(message): return message
        case let .memory(message): return message
        case let .numerical(message): return message
        }
    }
}
